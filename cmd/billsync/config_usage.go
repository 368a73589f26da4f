package main

import "fmt"

// UsageConfig tunes the usage upload (engine/usage, DESIGN.md §3).
type UsageConfig struct {
	// UsageZuoraShare is the percentage of BILLSYNC_ZUORA_CONCURRENCY the
	// usage uploads hold while reconciles wait for Zuora too (the rest is
	// the reconciles'); a share with nothing waiting lends its slots.
	UsageZuoraShare int
	// UsageImportThreshold is the backlog of usage rows from which they go
	// to Zuora as usage files (POST /v1/usage) instead of calls of 50; 0:
	// never.
	UsageImportThreshold int
}

func defaultUsageConfig() UsageConfig {
	return UsageConfig{UsageZuoraShare: 25, UsageImportThreshold: 20_000}
}

func (c *UsageConfig) settings() []setting {
	return []setting{
		{"BILLSYNC_USAGE_ZUORA_SHARE", "usage-zuora-share", "percentage of the Zuora concurrency limit usage uploads hold while reconciles wait too (and the reconciles the rest); an idle share lends its slots", &c.UsageZuoraShare},
		{"BILLSYNC_USAGE_IMPORT_THRESHOLD", "usage-import-threshold", "usage rows waiting from which they go as usage files (POST /v1/usage) instead of calls of 50; 0: never", &c.UsageImportThreshold},
	}
}

func (c *UsageConfig) validate() error {
	if c.UsageZuoraShare < 1 || c.UsageZuoraShare > 99 {
		return fmt.Errorf("config: BILLSYNC_USAGE_ZUORA_SHARE %d must be between 1 and 99 (percent)", c.UsageZuoraShare)
	}
	if c.UsageImportThreshold < 0 {
		return fmt.Errorf("config: BILLSYNC_USAGE_IMPORT_THRESHOLD %d must not be negative", c.UsageImportThreshold)
	}
	return nil
}

// importThreshold is the ledger's ImportThreshold (negative: never).
func (c *UsageConfig) importThreshold() int {
	if c.UsageImportThreshold == 0 {
		return -1
	}
	return c.UsageImportThreshold
}
