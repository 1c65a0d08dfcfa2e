package inventory

import "fmt"

// ZoneError is a maintenance zone that is not one of its datacenter's.
type ZoneError struct {
	Zone int32
	// Datacenter is "" when the zone was checked against every datacenter.
	Datacenter string
	// Zones is how many MZs the datacenter has (the most any has when
	// Datacenter is "").
	Zones int32
}

func (e *ZoneError) Error() string {
	if e.Datacenter == "" {
		return fmt.Sprintf("maintenance_zone %d is not one of any datacenter's: 1..%d", e.Zone, e.Zones)
	}
	return fmt.Sprintf("maintenance_zone %d is not one of datacenter %s's: 1..%d", e.Zone, e.Datacenter, e.Zones)
}

// CheckZone checks a maintenance zone given to an API: it must be one of
// datacenter's, 1..its MaintenanceZones, or of some datacenter of dcs when
// datacenter is "". Every API that takes a zone checks it here, so they refuse
// the same zones with the same words: a *ZoneError, or ErrNotFound when the
// datacenter does not exist.
func CheckZone(dcs []Datacenter, datacenter string, mz int32) error {
	var zones int32
	found := false
	for _, dc := range dcs {
		if datacenter == "" || dc.Name == datacenter {
			zones, found = max(zones, dc.MaintenanceZones), true
		}
	}
	if datacenter != "" && !found {
		return fmt.Errorf("datacenter %q does not exist: %w", datacenter, ErrNotFound)
	}
	if mz < 1 || mz > zones {
		return &ZoneError{Zone: mz, Datacenter: datacenter, Zones: zones}
	}
	return nil
}
