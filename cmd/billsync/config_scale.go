package main

import (
	"fmt"
	"time"
)

// ScaleConfig tunes running several replicas on one Postgres.
type ScaleConfig struct {
	// SchedulerLeaseTTL is how long the scheduler's leader lease lasts without
	// renewal (renewed every third of it); when the leader dies another
	// replica takes over within about 4/3 of it.
	SchedulerLeaseTTL time.Duration
	// SweepInterval is how often the sweeper returns records of crashed
	// workers (expired claims) to the queue.
	SweepInterval time.Duration
	// ClaimLease is how long a claim on a sync record or callout lasts
	// without a heartbeat (the pool extends it every third while the work
	// runs): the longest a crashed replica's claims keep others waiting.
	ClaimLease time.Duration
	// DriftShare is the percentage of Zuora's concurrency the hourly drift
	// checks may take (each check makes one read at a time, so it bounds the
	// checks run at once); they are claimed after every due reconcile.
	DriftShare int
}

func defaultScaleConfig() ScaleConfig {
	return ScaleConfig{SchedulerLeaseTTL: 15 * time.Second, SweepInterval: time.Minute, ClaimLease: time.Minute, DriftShare: 25}
}

func (c *ScaleConfig) settings() []setting {
	return []setting{
		{"BILLSYNC_SCHEDULER_LEASE_TTL", "scheduler-lease-ttl", "lifetime of the scheduler leader's lease; another replica takes over when it lapses", &c.SchedulerLeaseTTL},
		{"BILLSYNC_SWEEP_INTERVAL", "sweep-interval", "how often stuck (expired) claims are returned to the queue", &c.SweepInterval},
		{"BILLSYNC_DRIFT_SHARE", "drift-share", "percentage (1-100) of BILLSYNC_ZUORA_CONCURRENCY the hourly drift checks may take (that many checks at once); they run after every due reconcile", &c.DriftShare},
		{"BILLSYNC_CLAIM_LEASE", "claim-lease", "lifetime of a claim on a sync record or callout, extended by a heartbeat while it runs; a crashed replica's claims are taken over after it", &c.ClaimLease},
	}
}

func (c *ScaleConfig) validate() error {
	if c.SchedulerLeaseTTL < 3*time.Second || c.SchedulerLeaseTTL > 10*time.Minute {
		return fmt.Errorf("config: BILLSYNC_SCHEDULER_LEASE_TTL %s must be between 3s and 10m", c.SchedulerLeaseTTL)
	}
	if c.SweepInterval < time.Second || c.SweepInterval > time.Hour {
		return fmt.Errorf("config: BILLSYNC_SWEEP_INTERVAL %s must be between 1s and 1h", c.SweepInterval)
	}
	if c.ClaimLease < 3*time.Second || c.ClaimLease > 30*time.Minute {
		return fmt.Errorf("config: BILLSYNC_CLAIM_LEASE %s must be between 3s and 30m", c.ClaimLease)
	}
	if c.DriftShare < 1 || c.DriftShare > 100 {
		return fmt.Errorf("config: BILLSYNC_DRIFT_SHARE %d must be between 1 and 100", c.DriftShare)
	}
	return nil
}

// DriftChecks is the most drift checks run at once: the share of Zuora's
// concurrency limit.
func (c *ScaleConfig) DriftChecks(zuoraConcurrency int) int {
	return max(1, zuoraConcurrency*c.DriftShare/100)
}
