package store

import (
	"context"
	"errors"
	"time"

	"gorm.io/gorm"
)

// TryLease acquires or renews the named lease for holder until now+ttl. It
// reports whether holder holds the lease afterwards. A lease whose holder stops
// renewing expires, and another replica takes it over.
func (db *DB) TryLease(ctx context.Context, name, holder string, ttl time.Duration) (bool, error) {
	now := db.Now()
	until := now.Add(ttl)
	res := db.Gorm.WithContext(ctx).Exec(`INSERT INTO leases(name, holder, expires_at) VALUES (?, ?, ?)
		ON CONFLICT (name) DO UPDATE SET holder = excluded.holder, expires_at = excluded.expires_at
		WHERE leases.holder = excluded.holder OR leases.expires_at < ?`, name, holder, until, now)
	if res.Error != nil {
		return false, res.Error
	}
	return res.RowsAffected > 0, nil
}

// ReleaseLease gives the lease up if holder holds it.
func (db *DB) ReleaseLease(ctx context.Context, name, holder string) error {
	return db.Gorm.WithContext(ctx).Exec(`DELETE FROM leases WHERE name = ? AND holder = ?`, name, holder).Error
}

// LeaseHolder returns the current holder of a lease, if unexpired.
func (db *DB) LeaseHolder(ctx context.Context, name string) (string, time.Time, error) {
	var row struct {
		Holder    string
		ExpiresAt time.Time
	}
	err := db.Gorm.WithContext(ctx).Raw(`SELECT holder, expires_at FROM leases WHERE name = ?`, name).Scan(&row).Error
	if err != nil || row.Holder == "" || row.ExpiresAt.Before(db.Now()) {
		return "", time.Time{}, err
	}
	return row.Holder, row.ExpiresAt, nil
}

// JobRun is one run of a scheduled job.
type JobRun struct {
	Job        string     `json:"job"`
	Period     string     `json:"period"`
	StartedAt  time.Time  `json:"startedAt"`
	FinishedAt *time.Time `json:"finishedAt,omitempty"`
	Outcome    string     `json:"outcome"`
	Detail     string     `json:"detail,omitempty"`
}

type jobRunRow struct {
	Job        string `gorm:"primaryKey"`
	Period     string `gorm:"primaryKey"`
	StartedAt  time.Time
	FinishedAt *time.Time
	Outcome    string
	Detail     string
}

func (jobRunRow) TableName() string { return "job_runs" }

// StartJobRun claims the run of job for period; false if it was already claimed
// (by this or another replica), so each period runs once.
func (db *DB) StartJobRun(ctx context.Context, job, period string) (bool, error) {
	res := db.Gorm.WithContext(ctx).Exec(`INSERT INTO job_runs(job, period, started_at, outcome) VALUES (?, ?, ?, 'running') ON CONFLICT DO NOTHING`,
		job, period, db.Now())
	return res.RowsAffected > 0, res.Error
}

// FinishJobRun records a run's outcome.
func (db *DB) FinishJobRun(ctx context.Context, job, period, outcome, detail string) error {
	now := db.Now()
	return db.Gorm.WithContext(ctx).Model(&jobRunRow{}).Where("job = ? AND period = ?", job, period).
		Updates(map[string]any{"finished_at": now, "outcome": outcome, "detail": truncate(detail, 2000)}).Error
}

// LastJobRuns returns the latest run of each job.
func (db *DB) LastJobRuns(ctx context.Context) (map[string]JobRun, error) {
	var rows []jobRunRow
	err := db.Gorm.WithContext(ctx).Raw(`SELECT j.* FROM job_runs j JOIN (SELECT job, MAX(started_at) AS m FROM job_runs GROUP BY job) x
		ON x.job = j.job AND x.m = j.started_at`).Scan(&rows).Error
	out := map[string]JobRun{}
	for _, r := range rows {
		out[r.Job] = JobRun{Job: r.Job, Period: r.Period, StartedAt: r.StartedAt.UTC(), FinishedAt: utcPtr(r.FinishedAt), Outcome: r.Outcome, Detail: r.Detail}
	}
	return out, err
}

// LastSuccessfulJobRun returns the latest successful run of a job.
func (db *DB) LastSuccessfulJobRun(ctx context.Context, job string) (JobRun, bool, error) {
	var r jobRunRow
	err := db.Gorm.WithContext(ctx).Where("job = ? AND outcome = ?", job, "ok").Order("started_at DESC").Take(&r).Error
	if errors.Is(err, gorm.ErrRecordNotFound) {
		return JobRun{}, false, nil
	}
	if err != nil {
		return JobRun{}, false, err
	}
	return JobRun{Job: r.Job, Period: r.Period, StartedAt: r.StartedAt.UTC(), FinishedAt: utcPtr(r.FinishedAt), Outcome: r.Outcome, Detail: r.Detail}, true, nil
}
