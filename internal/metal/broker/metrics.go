package broker

import (
	"context"
	"fmt"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/strata-dev/strata/internal/metal/inventory"
)

// inventoryCollector reports machine and pool gauges, read from the store at
// each scrape so they are never stale.
type inventoryCollector struct {
	store     inventory.Store
	machines  *prometheus.Desc
	unhealthy *prometheus.Desc
	provision *prometheus.Desc
	capacity  *prometheus.Desc
	members   *prometheus.Desc
}

func newInventoryCollector(store inventory.Store) *inventoryCollector {
	return &inventoryCollector{
		store: store,
		machines: prometheus.NewDesc("strata_broker_machines", "Machines by datacenter and state.",
			[]string{"datacenter", "state"}, nil),
		unhealthy: prometheus.NewDesc("strata_broker_machines_unhealthy", "Machines that are not healthy, by datacenter and state.",
			[]string{"datacenter", "state"}, nil),
		provision: prometheus.NewDesc("strata_broker_machines_provision", "Machines by datacenter and provision state (clean, joining, joined, wiping).",
			[]string{"datacenter", "provision"}, nil),
		capacity: prometheus.NewDesc("strata_broker_pool_capacity", "Machines a pool asks for.",
			[]string{"pool"}, nil),
		members: prometheus.NewDesc("strata_broker_pool_machines", "Machines a pool holds, by state.",
			[]string{"pool", "state"}, nil),
	}
}

// Describe implements prometheus.Collector.
func (c *inventoryCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.machines
	ch <- c.unhealthy
	ch <- c.provision
	ch <- c.capacity
	ch <- c.members
}

// Collect implements prometheus.Collector.
func (c *inventoryCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	err := c.store.InTx(ctx, func(ctx context.Context, tx inventory.Tx) error {
		dcs, err := tx.ListDatacenters(ctx)
		if err != nil {
			return err
		}
		for _, dc := range dcs {
			counts, err := tx.CountMachines(ctx, inventory.MachineFilter{Datacenter: dc.Name})
			if err != nil {
				return err
			}
			byState := map[inventory.MachineState]int{}
			unhealthy := map[inventory.MachineState]int{}
			byProvision := map[inventory.ProvisionState]int{}
			byPool := map[[2]string]int{}
			for _, n := range counts {
				byState[n.State] += n.Count
				if !n.Healthy {
					unhealthy[n.State] += n.Count
				}
				byProvision[n.Provision] += n.Count
				if n.Pool != "" {
					byPool[[2]string{n.Pool, string(n.State)}] += n.Count
				}
			}
			for _, s := range inventory.MachineStates {
				ch <- prometheus.MustNewConstMetric(c.machines, prometheus.GaugeValue, float64(byState[s]), dc.Name, string(s))
				ch <- prometheus.MustNewConstMetric(c.unhealthy, prometheus.GaugeValue, float64(unhealthy[s]), dc.Name, string(s))
			}
			for _, p := range inventory.ProvisionStates {
				ch <- prometheus.MustNewConstMetric(c.provision, prometheus.GaugeValue, float64(byProvision[p]), dc.Name, string(p))
			}
			for k, n := range byPool {
				ch <- prometheus.MustNewConstMetric(c.members, prometheus.GaugeValue, float64(n), k[0], k[1])
			}
		}
		pools, err := tx.ListPools(ctx)
		for _, p := range pools {
			ch <- prometheus.MustNewConstMetric(c.capacity, prometheus.GaugeValue, float64(p.Capacity), p.Name)
		}
		return err
	})
	if err != nil {
		// The scrape fails visibly rather than reporting a partial inventory.
		ch <- prometheus.NewInvalidMetric(c.machines, fmt.Errorf("reading the inventory: %w", err))
	}
}
