package localdc

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"strconv"
	"strings"
	"syscall"
)

// ComponentState is what `strata status` reports of one component process.
type ComponentState struct {
	// Name is the process's, e.g. hub-1; Component and Cluster say what it
	// runs where.
	Name      string `json:"name"`
	Component string `json:"component"`
	Cluster   string `json:"cluster"`
	// PID is the process's while it runs; Alive says whether it does.
	PID   int  `json:"pid,omitempty"`
	Alive bool `json:"alive"`
	// Ready is its /readyz.
	Ready bool `json:"ready"`
	// Leader is its strata_leader gauge (a broker's strata_broker_leader):
	// whether this replica does the work; absent for the webhook, which
	// has no election, and for Kueue, whose metrics need authorization.
	Leader *bool  `json:"leader,omitempty"`
	Log    string `json:"log"`
	Reason string `json:"reason,omitempty"`
	// Restarts counts its restarts since `strata up` started.
	Restarts *Restart `json:"restarts,omitempty"`
}

// componentStates asks each component process of the datacenter.
func componentStates(ctx context.Context, home string, dc *Datacenter) []ComponentState {
	procs := dc.ComponentProcesses()
	states := make([]ComponentState, 0, len(procs))
	for _, p := range procs {
		proc := Process{Name: p.Name}
		s := ComponentState{Name: p.Name, Component: p.Component, Cluster: p.Cluster, Log: proc.LogPath(home)}
		s.PID, s.Alive = alivePID(proc.PIDPath(home))
		switch {
		case !s.Alive:
			s.Reason = "not running: run `strata up`"
		default:
			probeComponent(ctx, p, &s)
		}
		states = append(states, s)
	}
	return states
}

// alivePID reads a pid file and says whether that process runs.
func alivePID(path string) (int, bool) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return 0, false
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(raw)))
	if err != nil || pid <= 0 {
		return 0, false
	}
	// Signal 0 checks that the process exists without touching it.
	return pid, syscall.Kill(pid, 0) == nil
}

// probeComponent asks a process's /readyz and, for a controller manager
// or a broker, its leader gauge.
func probeComponent(ctx context.Context, p ComponentProcess, s *ComponentState) {
	ctx, cancel := context.WithTimeout(ctx, statusTimeout)
	defer cancel()
	health, gauge := p.Ports.Health, "strata_leader"
	if p.Component == ComponentBroker {
		// The broker serves its probes beside /metrics.
		health, gauge = p.Ports.Metrics, "strata_broker_leader"
	}
	body, code, err := httpGet(ctx, "http://"+loopback(health)+"/readyz")
	switch {
	case err != nil:
		s.Reason = "not answering /readyz: " + err.Error()
		return
	case code != http.StatusOK:
		s.Reason = fmt.Sprintf("/readyz says %d: %s", code, lastLines(body, 1))
		return
	}
	s.Ready = true
	// Kueue serves its metrics over TLS to authorized callers only, so its
	// leadership is not read; the webhook and the console have no leader.
	if p.Component == ComponentWebhook || p.Component == ComponentKueue || p.Component == ComponentConsole {
		return
	}
	metrics, code, err := httpGet(ctx, "http://"+loopback(p.Ports.Metrics)+"/metrics")
	if err != nil || code != http.StatusOK {
		s.Reason = fmt.Sprintf("/metrics: %v (status %d)", err, code)
		return
	}
	leader, err := leaderGauge(metrics, gauge)
	if err != nil {
		s.Reason = err.Error()
		return
	}
	s.Leader = &leader
}

func httpGet(ctx context.Context, url string) (string, int, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return "", 0, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return "", 0, err
	}
	defer resp.Body.Close() //nolint:errcheck // read to the end below
	raw, err := io.ReadAll(io.LimitReader(resp.Body, 4<<20))
	return string(raw), resp.StatusCode, err
}

// leaderGauge finds the gauge named name (strata_leader,
// strata_broker_leader) in Prometheus text: 1 when the process leads.
func leaderGauge(metrics, name string) (bool, error) {
	sc := bufio.NewScanner(strings.NewReader(metrics))
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if !strings.HasPrefix(line, name+"{") && !strings.HasPrefix(line, name+" ") {
			continue
		}
		fields := strings.Fields(line)
		v, err := strconv.ParseFloat(fields[len(fields)-1], 64)
		if err != nil {
			return false, fmt.Errorf("%s has value %q: %w", name, fields[len(fields)-1], err)
		}
		return v == 1, nil
	}
	return false, fmt.Errorf("/metrics has no %s gauge", name)
}
