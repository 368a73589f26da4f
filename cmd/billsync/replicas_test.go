package main

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"
	"github.com/stretchr/testify/require"

	"github.com/billsync/billsync/cmd/billsync/internal/bench"
	"github.com/billsync/billsync/connectors/zuora"
	"github.com/billsync/billsync/connectors/zuora/zuorasim"
	"github.com/billsync/billsync/engine/store"
	"github.com/billsync/billsync/engine/store/storetest"
)

// replica is one `billsync serve` process.
type replica struct {
	name string
	cmd  *exec.Cmd
	url  string
	logs *lockedBuffer
	done chan struct{}
}

type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

func startReplica(t *testing.T, bin, name string, env []string) *replica {
	t.Helper()
	r := &replica{name: name, logs: &lockedBuffer{}, done: make(chan struct{})}
	r.cmd = exec.Command(bin, "serve")
	r.cmd.Env = append(os.Environ(), append(env, "BILLSYNC_REPLICA_ID="+name, "BILLSYNC_ADDR=127.0.0.1:0")...)
	r.cmd.Stderr = r.logs
	stdout, err := r.cmd.StdoutPipe()
	require.NoError(t, err)
	require.NoError(t, r.cmd.Start())
	t.Cleanup(func() {
		_ = r.cmd.Process.Kill()
		<-r.done
		if t.Failed() {
			t.Logf("logs of replica %s:\n%s", name, r.logs.String())
		}
	})
	urlc := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			if rest, ok := strings.CutPrefix(sc.Text(), "billsync listening on "); ok {
				urlc <- strings.Fields(rest)[0]
			}
		}
		_ = r.cmd.Wait()
		close(r.done)
	}()
	select {
	case r.url = <-urlc:
	case <-r.done:
		t.Fatalf("replica %s exited: %s", name, r.logs.String())
	case <-time.After(30 * time.Second):
		t.Fatalf("replica %s did not start: %s", name, r.logs.String())
	}
	return r
}

// metric reads one sample of the replica's /metrics ("" when absent).
func (r *replica) metric(t *testing.T, series string) string {
	t.Helper()
	resp, err := http.Get(r.url + "/metrics")
	require.NoError(t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, series+" "); ok {
			return v
		}
	}
	return ""
}

func (r *replica) count(t *testing.T, series string) float64 {
	v := r.metric(t, series)
	if v == "" {
		return 0
	}
	f, err := strconv.ParseFloat(v, 64)
	require.NoError(t, err)
	return f
}

// reconciled sums the replica's reconciles over the outbound kinds and states.
func (r *replica) reconciled(t *testing.T) float64 {
	total := 0.0
	for _, kind := range []string{store.EntityPlan, store.EntityCustomer, store.EntitySubscription} {
		for _, st := range []string{store.StateSynced, store.StatePending, store.StateSkipped, store.StateFailed} {
			total += r.count(t, fmt.Sprintf(`billsync_sync_reconciles_total{kind=%q,state=%q}`, kind, st))
		}
	}
	return total
}

func waitFor(t *testing.T, within time.Duration, what string, cond func() bool) time.Duration {
	t.Helper()
	start := time.Now()
	for !cond() {
		if time.Since(start) > within {
			t.Fatalf("%s: not within %s", what, within)
		}
		time.Sleep(100 * time.Millisecond)
	}
	return time.Since(start)
}

// TestTwoReplicas runs two `billsync serve` processes on one Postgres schema
// against one simulator: every record is pushed once although both work the
// queue, the cron schedule runs on the leader only, and when the leader is
// killed (SIGKILL) the other takes over and carries on alone.
func TestTwoReplicas(t *testing.T) {
	t.Parallel()
	dbURL := storetest.URL(t, store.Postgres)
	bin := filepath.Join(t.TempDir(), "billsync")
	build := exec.Command("go", "build", "-o", bin, ".")
	out, err := build.CombinedOutput()
	require.NoError(t, err, "go build: %s", out)

	tenant := zuora.SimTenant("BillsyncId__c", builtinSimUnits...)
	sim := zuorasim.New(zuorasim.Options{Tenant: &tenant, Latency: 20 * time.Millisecond, Logger: zerolog.Nop()})
	t.Cleanup(sim.Close)
	srv := httptest.NewServer(sim)
	t.Cleanup(srv.Close)

	migrate := exec.Command(bin, "migrate", "up")
	migrate.Env = append(os.Environ(), "BILLSYNC_DATABASE_URL="+dbURL)
	out, err = migrate.CombinedOutput()
	require.NoError(t, err, "migrate: %s", out)
	db := storetest.OpenURL(t, dbURL)
	ctx := context.Background()

	env := []string{"BILLSYNC_DATABASE_URL=" + dbURL, "BILLSYNC_ZUORA_BASE_URL=" + srv.URL, "BILLSYNC_ZUORA_ALLOW_ANY_URL=true",
		"BILLSYNC_ZUORA_CLIENT_ID=" + zuorasim.DefaultClientID, "BILLSYNC_ZUORA_CLIENT_SECRET=" + zuorasim.DefaultClientSecret,
		"BILLSYNC_ZUORA_REQUESTS_PER_MINUTE=100000", "BILLSYNC_SYNC_WORKERS=8", "BILLSYNC_LOG_FORMAT=json", "BILLSYNC_LOG_LEVEL=info",
		"BILLSYNC_SCHEDULER_LEASE_TTL=3s", "BILLSYNC_SWEEP_INTERVAL=1s", "BILLSYNC_MIGRATE_ON_START=false"}
	started := time.Now()
	a := startReplica(t, bin, "replica-a", env)
	waitFor(t, 10*time.Second, "replica-a leads", func() bool { return a.metric(t, "billsync_scheduler_leader") == "1" })
	b := startReplica(t, bin, "replica-b", env)
	waitFor(t, 10*time.Second, "replica-b serves metrics", func() bool { return b.metric(t, "billsync_scheduler_leader") != "" })

	// Work for both: the catalog and 150 customers with one subscription each,
	// written while both replicas poll the queue.
	const n = 150
	_, _, err = db.UpsertPlan(ctx, bench.BenchPlan(0))
	require.NoError(t, err)
	for i := range n {
		_, _, err := db.UpsertCustomer(ctx, bench.BenchCustomer(i))
		require.NoError(t, err)
		_, _, err = db.UpsertSubscription(ctx, bench.BenchSubscription(i, 1))
		require.NoError(t, err)
	}
	settled := func() bool {
		counts, err := db.SyncCounts(ctx)
		require.NoError(t, err)
		return counts[store.EntitySubscription][store.StateSynced] == int64(n) && counts[store.EntityCustomer][store.StateSynced] == int64(n) &&
			counts[store.EntityPlan][store.StateSynced] == 1
	}
	took := waitFor(t, 60*time.Second, "every record synced", settled)
	calls := sim.Stats().Calls
	require.Equal(t, n, calls["POST /v1/orders"], "one order per customer and first subscription: nothing pushed twice")
	require.Equal(t, 1, calls["POST /v1/object/product"])
	require.Equal(t, 1, calls["POST /v1/object/product-rate-plan"])
	require.Equal(t, 4, calls["POST /v1/object/product-rate-plan-charge"])
	require.Zero(t, calls["POST /v1/accounts"]+calls["PUT /v1/accounts/{account-key}"])
	ra, rb := a.reconciled(t), b.reconciled(t)
	t.Logf("synced %d customers in %s; reconciles: replica-a %.0f, replica-b %.0f", n, took.Round(time.Millisecond), ra, rb)
	require.Positive(t, ra, "replica-a took part")
	require.Positive(t, rb, "replica-b took part")

	// The schedule runs on the leader only: the sweeper fires every second on
	// both replicas, runs once per sweep interval (1 s) across them, and only
	// replica-a ever runs it.
	sweeps := `billsync_scheduler_job_runs_total{job="sweeper",outcome="ok"}`
	waitFor(t, 10*time.Second, "the leader runs the sweeper", func() bool { return a.count(t, sweeps) >= 1 })
	require.Equal(t, "1", a.metric(t, "billsync_scheduler_leader"))
	require.Equal(t, "0", b.metric(t, "billsync_scheduler_leader"))
	require.Empty(t, b.metric(t, sweeps), "the follower never runs a job")
	holder, _, err := db.LeaseHolder(ctx, "scheduler")
	require.NoError(t, err)
	require.Equal(t, "replica-a", holder)
	var runs int64
	require.NoError(t, db.Gorm.Raw(`SELECT count(*) FROM job_runs WHERE job = 'sweeper'`).Scan(&runs).Error)
	require.Positive(t, runs)
	require.LessOrEqual(t, runs, int64(time.Since(started)/time.Second)+1, "once per sweep interval, across replicas")

	// Kill the leader: replica-b takes over within 30 s and works alone.
	require.NoError(t, a.cmd.Process.Kill())
	<-a.done
	took = waitFor(t, 30*time.Second, "replica-b takes over", func() bool { return b.metric(t, "billsync_scheduler_leader") == "1" })
	t.Logf("replica-b took over %s after replica-a was killed", took.Round(time.Millisecond))
	holder, _, err = db.LeaseHolder(ctx, "scheduler")
	require.NoError(t, err)
	require.Equal(t, "replica-b", holder)
	for i := n; i < n+10; i++ {
		_, _, err := db.UpsertCustomer(ctx, bench.BenchCustomer(i))
		require.NoError(t, err)
		_, _, err = db.UpsertSubscription(ctx, bench.BenchSubscription(i, 1))
		require.NoError(t, err)
	}
	waitFor(t, 30*time.Second, "replica-b syncs new work alone", func() bool {
		counts, err := db.SyncCounts(ctx)
		require.NoError(t, err)
		return counts[store.EntitySubscription][store.StateSynced] == int64(n+10)
	})
	require.Equal(t, n+10, sim.Stats().Calls["POST /v1/orders"])
}
