// Package testbroker runs a real Compute Broker for integration tests: it
// lives apart from testutil, which the metal packages' own tests import.
package testbroker

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/strata-dev/strata/internal/metal/broker"
	"github.com/strata-dev/strata/internal/metal/inventory"
	"github.com/strata-dev/strata/internal/metal/provision/sim"
	brokerv1 "github.com/strata-dev/strata/proto/strata/broker/v1"
)

// GeneralProfile is the node profile StartBroker creates.
const GeneralProfile = "general"

// Start runs a real broker for the test: a SQLite inventory of
// machines machines in dc1 (seed 1) with the general node profile, the sim
// provisioner with joins and wipes of 10 ms and the given maintenance
// duration, and the gRPC server on loopback. It stops when the test ends.
// The sim plays faults in the clusters given (its own credential of them;
// machines join with their pool's bootstrap token).
func Start(t testing.TB, machines int, maintenance time.Duration, clusters ...sim.Cluster) (brokerv1.BrokerServiceClient, *sim.Provisioner) {
	t.Helper()
	_, c, p := StartServer(t, machines, maintenance, clusters...)
	return c, p
}

// StartServer is Start that also returns the broker's address, for a test
// of a client that dials it itself (the CLI's --broker).
func StartServer(t testing.TB, machines int, maintenance time.Duration, clusters ...sim.Cluster) (string, brokerv1.BrokerServiceClient, *sim.Provisioner) {
	t.Helper()
	return StartServerWith(t, machines, maintenance, broker.ServerOptions{}, clusters...)
}

// StartServerWith is StartServer with the server's options (its address is
// always a free loopback port); the client it returns presents no
// certificate, so with TLS a test dials its own.
func StartServerWith(t testing.TB, machines int, maintenance time.Duration, opts broker.ServerOptions, clusters ...sim.Cluster) (string, brokerv1.BrokerServiceClient, *sim.Provisioner) {
	t.Helper()
	opts.Address = "127.0.0.1:0"
	ctx, cancel := context.WithCancel(context.Background())
	store, err := inventory.Open(ctx, filepath.Join(t.TempDir(), "inventory.db"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := inventory.Seed(ctx, store, inventory.GenerateOptions{Seed: 1, Datacenter: "dc1", Machines: machines}); err != nil {
		t.Fatal(err)
	}
	if err := store.InTx(ctx, func(ctx context.Context, tx inventory.Tx) error {
		return tx.InsertProfile(ctx, inventory.NodeProfile{Name: GeneralProfile, MinCPUCores: 32, MinMemoryGiB: 128, NodeConfig: "kubelet-1.37-general"})
	}); err != nil {
		t.Fatal(err)
	}
	provisioner, err := sim.New(sim.Options{
		JoinDuration: 10 * time.Millisecond, WipeDuration: 10 * time.Millisecond, MaintenanceDuration: maintenance, Clusters: clusters,
	})
	if err != nil {
		t.Fatal(err)
	}
	b, err := broker.New(broker.Options{Store: store, Provisioner: provisioner})
	if err != nil {
		t.Fatal(err)
	}
	srv, err := broker.NewServer(b, opts, prometheus.NewRegistry())
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{}, 3)
	go func() { _ = srv.Serve(ctx); done <- struct{}{} }()
	go func() { _ = b.Run(ctx); done <- struct{}{} }()
	go func() { _ = provisioner.Run(ctx); done <- struct{}{} }()
	conn, err := grpc.NewClient(srv.Addr(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = conn.Close()
		cancel()
		for range 3 {
			<-done
		}
		_ = store.Close()
	})
	return srv.Addr(), brokerv1.NewBrokerServiceClient(conn), provisioner
}
