package inbound

import "context"

// SetHook installs a processing hook (tests): an error returned at a stage
// aborts the processing there, as a crash would.
func (s *Service) SetHook(h func(ctx context.Context, stage string) error) { s.hook = h }
