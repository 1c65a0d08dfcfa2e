package sim

import (
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	clocktesting "k8s.io/utils/clock/testing"

	"github.com/strata-dev/strata/internal/metal/inventory"
	"github.com/strata-dev/strata/internal/metal/provision"
)

var (
	storage32 = inventory.SKU{Name: "storage-32", Arch: "amd64", CPUCores: 32, MemoryGiB: 256, LocalDiskGiB: 30000}
	general32 = inventory.SKU{Name: "general-32", Arch: "amd64", CPUCores: 32, MemoryGiB: 128, LocalDiskGiB: 960}
)

func storageMachine(id string) provision.Machine {
	return provision.Machine{
		ID: id, Datacenter: "dc1", MaintenanceZone: 3, Rack: "dc1-r002", SKU: storage32,
		OSImage: "strata-os-2026.11", Kernel: "6.12.40", NodeConfig: "kubelet-1.37", Pool: "store",
	}
}

// volumeSummary is what matters of a local volume, in one line.
func volumeSummary(pv *corev1.PersistentVolume) string {
	terms := pv.Spec.NodeAffinity.Required.NodeSelectorTerms
	req := terms[0].MatchExpressions[0]
	return strings.Join([]string{
		pv.Name, pv.Spec.StorageClassName, pv.Spec.Capacity.Storage().String(), pv.Spec.Local.Path,
		string(pv.Spec.PersistentVolumeReclaimPolicy), string(pv.Spec.AccessModes[0]), string(*pv.Spec.VolumeMode),
		req.Key + " " + string(req.Operator) + " " + strings.Join(req.Values, ","),
		pv.Labels[LocalVolumeLabel], pv.Labels["fleet.strata.dev/machine"], pv.Annotations["pv.kubernetes.io/provisioned-by"],
	}, " | ")
}

func TestLocalVolumesOfSKUs(t *testing.T) {
	cases := []struct {
		sku  inventory.SKU
		want []string
	}{
		{sku: storage32, want: []string{
			"m1-ssd-0 | local-ssd | 7500Gi | /mnt/ssd0 | Delete | ReadWriteOnce | Filesystem | kubernetes.io/hostname In m1 | true | m1 | sim.strata.dev/local-volume-provisioner",
			"m1-ssd-1 | local-ssd | 7500Gi | /mnt/ssd1 | Delete | ReadWriteOnce | Filesystem | kubernetes.io/hostname In m1 | true | m1 | sim.strata.dev/local-volume-provisioner",
			"m1-ssd-2 | local-ssd | 7500Gi | /mnt/ssd2 | Delete | ReadWriteOnce | Filesystem | kubernetes.io/hostname In m1 | true | m1 | sim.strata.dev/local-volume-provisioner",
			"m1-ssd-3 | local-ssd | 7500Gi | /mnt/ssd3 | Delete | ReadWriteOnce | Filesystem | kubernetes.io/hostname In m1 | true | m1 | sim.strata.dev/local-volume-provisioner",
		}},
		// The general, high-memory and GPU SKUs of the generated inventory.
		{sku: general32},
		{sku: inventory.SKU{Name: "general-64", LocalDiskGiB: 1920}},
		{sku: inventory.SKU{Name: "highmem-64", LocalDiskGiB: 1920}},
		{sku: inventory.SKU{Name: "gpu-h100", LocalDiskGiB: 7680}},
		{sku: inventory.SKU{Name: "just-enough", LocalDiskGiB: 10000}, want: []string{
			"m1-ssd-0 | local-ssd | 2500Gi | /mnt/ssd0 | Delete | ReadWriteOnce | Filesystem | kubernetes.io/hostname In m1 | true | m1 | sim.strata.dev/local-volume-provisioner",
			"m1-ssd-1 | local-ssd | 2500Gi | /mnt/ssd1 | Delete | ReadWriteOnce | Filesystem | kubernetes.io/hostname In m1 | true | m1 | sim.strata.dev/local-volume-provisioner",
			"m1-ssd-2 | local-ssd | 2500Gi | /mnt/ssd2 | Delete | ReadWriteOnce | Filesystem | kubernetes.io/hostname In m1 | true | m1 | sim.strata.dev/local-volume-provisioner",
			"m1-ssd-3 | local-ssd | 2500Gi | /mnt/ssd3 | Delete | ReadWriteOnce | Filesystem | kubernetes.io/hostname In m1 | true | m1 | sim.strata.dev/local-volume-provisioner",
		}},
	}
	for _, tc := range cases {
		t.Run(tc.sku.Name, func(t *testing.T) {
			var got []string
			for _, pv := range localVolumes(provision.Machine{ID: "m1", SKU: tc.sku}) {
				got = append(got, volumeSummary(pv))
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("volumes (-want +got):\n%s", diff)
			}
		})
	}
}

// volumesOf returns the names of machine id's local volumes and of those
// being deleted.
func volumesOf(t *testing.T, kube kubernetes.Interface, id string) (live, deleting []string) {
	t.Helper()
	list, err := kube.CoreV1().PersistentVolumes().List(t.Context(), metav1.ListOptions{LabelSelector: machineVolumes(id)})
	if err != nil {
		t.Fatal(err)
	}
	for _, pv := range list.Items {
		if pv.DeletionTimestamp != nil {
			deleting = append(deleting, pv.Name)
		} else {
			live = append(live, pv.Name)
		}
	}
	return live, deleting
}

// TestLocalVolumes follows a storage machine's volumes through join,
// reimage, release of a claim and wipe, against an API server. envtest
// runs no controllers: Kubernetes' volume protection keeps a deleted
// volume (terminating) until a controller would let it go, so a deleted
// volume here is one being deleted.
func TestLocalVolumes(t *testing.T) {
	c := startCluster(t)
	kube := c.Kube
	ctx := t.Context()
	clock := clocktesting.NewFakeClock(t0)
	target := c.target()
	// The volumes are made with the sim's own credential: a Node may not.
	p, err := New(Options{JoinDuration: time.Second, WipeDuration: time.Second, Clock: clock, Clusters: c.own()})
	if err != nil {
		t.Fatal(err)
	}
	pvs := kube.CoreV1().PersistentVolumes()
	all := []string{"dc1-r002-u01-ssd-0", "dc1-r002-u01-ssd-1", "dc1-r002-u01-ssd-2", "dc1-r002-u01-ssd-3"}
	m := storageMachine("dc1-r002-u01")

	t.Run("a join offers the volumes of a storage machine, none of a general one", func(t *testing.T) {
		if err := run(t, clock, time.Second, func() error { return p.Join(ctx, m, target) }); err != nil {
			t.Fatalf("Join: %v", err)
		}
		if live, _ := volumesOf(t, kube, m.ID); !cmp.Equal(all, live) {
			t.Errorf("volumes after the join: %v, want %v", live, all)
		}
		general := provision.Machine{ID: "dc1-r001-u01", Datacenter: "dc1", MaintenanceZone: 1, Rack: "dc1-r001", SKU: general32}
		if err := run(t, clock, time.Second, func() error { return p.Join(ctx, general, target) }); err != nil {
			t.Fatalf("Join: %v", err)
		}
		if live, _ := volumesOf(t, kube, general.ID); len(live) != 0 {
			t.Errorf("a general machine offers local volumes: %v", live)
		}
	})

	// ssd-0 is bound to a claim; ssd-1 was deleted by someone.
	bound, err := pvs.Get(ctx, all[0], metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	bound.Spec.ClaimRef = &corev1.ObjectReference{Kind: "PersistentVolumeClaim", Namespace: "store", Name: "data-kv-0", UID: "uid-1"}
	if bound, err = pvs.Update(ctx, bound, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	bound.Status.Phase = corev1.VolumeBound
	if _, err = pvs.UpdateStatus(ctx, bound, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	removeFinalizers(t, kube, all[1])
	if err := pvs.Delete(ctx, all[1], metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}

	t.Run("a reimage keeps the volumes and makes the missing ones", func(t *testing.T) {
		op := provision.Operation{Kind: provision.Reimage, Software: inventory.Software{OSImage: "strata-os-2026.12", Kernel: "6.12.41", NodeConfig: "kubelet-1.38"}}
		if err := p.Maintain(ctx, m, op, target); err != nil {
			t.Fatalf("Maintain: %v", err)
		}
		if live, _ := volumesOf(t, kube, m.ID); !cmp.Equal(all, live) {
			t.Errorf("volumes after the reimage: %v, want %v", live, all)
		}
		got, err := pvs.Get(ctx, all[0], metav1.GetOptions{})
		if err != nil || got.Spec.ClaimRef == nil || got.Spec.ClaimRef.Name != "data-kv-0" {
			t.Errorf("the bound volume lost its claim in the reimage: %v, %+v", err, got.Spec.ClaimRef)
		}
	})

	t.Run("a released volume is offered again", func(t *testing.T) {
		released, err := pvs.Get(ctx, all[2], metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		released.Spec.ClaimRef = &corev1.ObjectReference{Kind: "PersistentVolumeClaim", Namespace: "store", Name: "data-kv-1", UID: "uid-2"}
		if released, err = pvs.Update(ctx, released, metav1.UpdateOptions{}); err != nil {
			t.Fatal(err)
		}
		released.Status.Phase = corev1.VolumeReleased
		if _, err = pvs.UpdateStatus(ctx, released, metav1.UpdateOptions{}); err != nil {
			t.Fatal(err)
		}
		p.recycleLocalVolumes(ctx)
		if got, err := pvs.Get(ctx, all[2], metav1.GetOptions{}); err != nil || got.Spec.ClaimRef != nil {
			t.Errorf("the released volume still names its claim: %v, %+v", err, got.Spec.ClaimRef)
		}
		if got, err := pvs.Get(ctx, all[0], metav1.GetOptions{}); err != nil || got.Spec.ClaimRef == nil {
			t.Errorf("the bound volume lost its claim: %v", err)
		}
	})

	t.Run("a wipe deletes the machine's volumes in every known cluster", func(t *testing.T) {
		// A provisioner that started after the join knows the cluster
		// from its options.
		fresh, err := New(Options{WipeDuration: time.Second, Clock: clock, Clusters: c.own()})
		if err != nil {
			t.Fatal(err)
		}
		if err := run(t, clock, time.Second, func() error { return fresh.Wipe(ctx, provision.Machine{ID: m.ID}) }); err != nil {
			t.Fatalf("Wipe: %v", err)
		}
		if live, deleting := volumesOf(t, kube, m.ID); len(live) != 0 || !cmp.Equal(all, deleting) {
			t.Errorf("after the wipe: volumes %v, being deleted %v; want all being deleted", live, deleting)
		}
		// The volumes of other machines stay.
		other := storageMachine("dc1-r002-u02")
		if err := run(t, clock, time.Second, func() error { return p.Join(ctx, other, target) }); err != nil {
			t.Fatal(err)
		}
		if err := run(t, clock, time.Second, func() error { return fresh.Wipe(ctx, provision.Machine{ID: m.ID}) }); err != nil {
			t.Fatalf("Wipe again: %v", err)
		}
		if live, _ := volumesOf(t, kube, other.ID); len(live) != LocalVolumesPerNode {
			t.Errorf("wiping %s touched the volumes of %s: %v left", m.ID, other.ID, live)
		}
	})

	t.Run("a wipe fails while a known cluster cannot be reached", func(t *testing.T) {
		gone := Cluster{Name: "gone", Kubeconfig: []byte(unreachableKubeconfig)}
		q, err := New(Options{WipeDuration: time.Second, Clock: clock, Clusters: append(c.own(), gone)})
		if err != nil {
			t.Fatal(err)
		}
		err = run(t, clock, time.Second, func() error { return q.Wipe(ctx, provision.Machine{ID: "dc1-r002-u02"}) })
		if err == nil || !strings.Contains(err.Error(), "connecting to cluster gone") {
			t.Errorf("Wipe with a cluster down: %v, want an error naming it", err)
		}
		if live, deleting := volumesOf(t, kube, "dc1-r002-u02"); len(live) != 0 || len(deleting) != LocalVolumesPerNode {
			t.Errorf("the reachable cluster's volumes: %v left, %v being deleted; want all being deleted", live, deleting)
		}
	})
}

// removeFinalizers lets a volume be deleted at once, as Kubernetes' volume
// protection controller would for an unbound one.
func removeFinalizers(t *testing.T, kube kubernetes.Interface, name string) {
	t.Helper()
	pv, err := kube.CoreV1().PersistentVolumes().Get(t.Context(), name, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	pv.Finalizers = nil
	if _, err := kube.CoreV1().PersistentVolumes().Update(t.Context(), pv, metav1.UpdateOptions{}); err != nil && !apierrors.IsNotFound(err) {
		t.Fatal(err)
	}
}

const unreachableKubeconfig = `apiVersion: v1
kind: Config
clusters: [{name: c, cluster: {server: "https://127.0.0.1:1"}}]
users: [{name: u, user: {token: t}}]
contexts: [{name: c, context: {cluster: c, user: u}}]
current-context: c
`
