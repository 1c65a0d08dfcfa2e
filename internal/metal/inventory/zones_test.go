package inventory

import (
	"errors"
	"strings"
	"testing"
)

func TestCheckZone(t *testing.T) {
	dcs := []Datacenter{{Name: "dc1", MaintenanceZones: 20}, {Name: "dc2", MaintenanceZones: 4}}
	cases := []struct {
		name       string
		datacenter string
		mz         int32
		want       string // "" for no error
		notFound   bool
	}{
		{name: "first", datacenter: "dc1", mz: 1},
		{name: "last", datacenter: "dc1", mz: 20},
		{name: "zero", datacenter: "dc1", mz: 0, want: "maintenance_zone 0 is not one of datacenter dc1's: 1..20"},
		{name: "negative", datacenter: "dc1", mz: -1, want: "maintenance_zone -1 is not one of datacenter dc1's: 1..20"},
		{name: "past the last", datacenter: "dc1", mz: 21, want: "maintenance_zone 21 is not one of datacenter dc1's: 1..20"},
		{name: "of the other datacenter", datacenter: "dc2", mz: 5, want: "maintenance_zone 5 is not one of datacenter dc2's: 1..4"},
		{name: "any datacenter", mz: 20},
		{name: "no datacenter has it", mz: 21, want: "maintenance_zone 21 is not one of any datacenter's: 1..20"},
		{name: "any datacenter, negative", mz: -1, want: "maintenance_zone -1 is not one of any datacenter's: 1..20"},
		{name: "unknown datacenter", datacenter: "dc9", mz: 1, want: `datacenter "dc9" does not exist`, notFound: true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			err := CheckZone(dcs, tc.datacenter, tc.mz)
			switch {
			case tc.want == "" && err != nil:
				t.Fatalf("CheckZone = %v, want nil", err)
			case tc.want == "":
				return
			case err == nil:
				t.Fatalf("CheckZone = nil, want %q", tc.want)
			}
			if got := err.Error(); !strings.HasPrefix(got, tc.want) {
				t.Errorf("CheckZone = %q, want %q", got, tc.want)
			}
			_, isZone := errors.AsType[*ZoneError](err)
			if errors.Is(err, ErrNotFound) != tc.notFound || isZone == tc.notFound {
				t.Errorf("CheckZone = %T %v; want ErrNotFound: %v, a *ZoneError: %v", err, err, tc.notFound, !tc.notFound)
			}
		})
	}
}
