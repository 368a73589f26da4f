package bench

import (
	"runtime/metrics"
	"sync"
	"syscall"
	"time"
)

// memSampler samples the Go runtime's memory every 50 ms and keeps the peak.
type memSampler struct {
	stopc chan struct{}
	wg    sync.WaitGroup
	mu    sync.Mutex
	peak  uint64
}

// Memory mapped by the runtime, minus what it has released to the OS.
var memMetrics = []string{"/memory/classes/total:bytes", "/memory/classes/heap/released:bytes"}

func startMemSampler() *memSampler {
	m := &memSampler{stopc: make(chan struct{})}
	m.wg.Add(1)
	go func() {
		defer m.wg.Done()
		s := []metrics.Sample{{Name: memMetrics[0]}, {Name: memMetrics[1]}}
		t := time.NewTicker(50 * time.Millisecond)
		defer t.Stop()
		for {
			m.sample(s)
			select {
			case <-m.stopc:
				m.sample(s)
				return
			case <-t.C:
			}
		}
	}()
	return m
}

func (m *memSampler) sample(s []metrics.Sample) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.sampleLocked(s)
}

func (m *memSampler) sampleLocked(s []metrics.Sample) {
	metrics.Read(s)
	if s[0].Value.Kind() != metrics.KindUint64 || s[1].Value.Kind() != metrics.KindUint64 {
		return
	}
	if v := s[0].Value.Uint64() - s[1].Value.Uint64(); v > m.peak {
		m.peak = v
	}
}

// peakSoFar is the Go runtime's peak of memory in use so far.
func (m *memSampler) peakSoFar() uint64 {
	s := []metrics.Sample{{Name: memMetrics[0]}, {Name: memMetrics[1]}}
	m.mu.Lock()
	defer m.mu.Unlock()
	m.sampleLocked(s)
	return m.peak
}

// stop ends sampling and returns the Go runtime's peak and the process's max RSS.
func (m *memSampler) stop() (peak, maxRSS uint64) {
	close(m.stopc)
	m.wg.Wait()
	return m.peak, maxRSSBytes()
}

func maxRSSBytes() uint64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return uint64(ru.Maxrss) * 1024 // kilobytes on Linux
}

// cpuTime is the process's CPU time so far (user + system).
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
