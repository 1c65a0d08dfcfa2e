package sim

import (
	"context"
	"errors"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/client-go/kubernetes"
	"k8s.io/utils/ptr"

	appsv1alpha1 "github.com/strata-dev/strata/api/apps/v1alpha1"
	fleetv1alpha1 "github.com/strata-dev/strata/api/fleet/v1alpha1"
	"github.com/strata-dev/strata/internal/metal/provision"
)

// The sim plays a local-volume provisioner (as the Kubernetes SIG Storage
// local static provisioner does on real machines): a machine whose SKU has
// large local disks offers them as local PersistentVolumes of the
// StorageClass local-ssd, made when its Node registers and pinned to it by
// node affinity, so a StatefulApp's pod comes back to the Node that holds
// its data. Wiping the machine erases the data, so its volumes are deleted.
// A volume released by its claim (Strata moved or removed the pod) is
// cleaned and offered again.
const (
	// LocalVolumesPerNode is how many volumes a machine with large local
	// disks offers; each has an equal share of its local disk.
	LocalVolumesPerNode = 4
	// LocalVolumeMinDiskGiB is the local disk from which a machine offers
	// local volumes: storage SKUs (storage-32 has 30,000 GiB); general,
	// high-memory and GPU SKUs keep their disks for the system and the
	// pods' ephemeral storage.
	LocalVolumeMinDiskGiB = 10_000
	// LocalVolumeLabel marks the volumes the sim made; the machine's are
	// also labelled fleet.strata.dev/machine.
	LocalVolumeLabel = "sim.strata.dev/local-volume"
	// LocalVolumeProvisioner is what the volumes' pv.kubernetes.io/provisioned-by
	// annotation names: an external provisioner, so Kubernetes' volume
	// controller leaves a released volume to it (reclaim policy Delete).
	LocalVolumeProvisioner = "sim.strata.dev/local-volume-provisioner"
	// localVolumeMountRoot is where the volumes are mounted on the machine:
	// /mnt/ssd0, /mnt/ssd1, ...
	localVolumeMountRoot = "/mnt/ssd"
)

// provisionedByAnnotation is Kubernetes' annotation of the provisioner
// that made a volume.
const provisionedByAnnotation = "pv.kubernetes.io/provisioned-by"

// localVolumes are the volumes the machine offers on its Node, none when
// its local disks are small.
func localVolumes(m provision.Machine) []*corev1.PersistentVolume {
	if m.SKU.LocalDiskGiB < LocalVolumeMinDiskGiB {
		return nil
	}
	size := resource.NewQuantity((int64(m.SKU.LocalDiskGiB)<<30)/LocalVolumesPerNode, resource.BinarySI)
	out := make([]*corev1.PersistentVolume, 0, LocalVolumesPerNode)
	for i := range LocalVolumesPerNode {
		out = append(out, &corev1.PersistentVolume{
			ObjectMeta: metav1.ObjectMeta{
				Name:        fmt.Sprintf("%s-ssd-%d", m.ID, i),
				Labels:      map[string]string{LocalVolumeLabel: "true", fleetv1alpha1.MachineLabel: m.ID},
				Annotations: map[string]string{provisionedByAnnotation: LocalVolumeProvisioner},
			},
			Spec: corev1.PersistentVolumeSpec{
				Capacity:                      corev1.ResourceList{corev1.ResourceStorage: *size},
				AccessModes:                   []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce},
				PersistentVolumeReclaimPolicy: corev1.PersistentVolumeReclaimDelete,
				StorageClassName:              appsv1alpha1.LocalSSDStorageClass,
				VolumeMode:                    ptr.To(corev1.PersistentVolumeFilesystem),
				PersistentVolumeSource: corev1.PersistentVolumeSource{
					Local: &corev1.LocalVolumeSource{Path: fmt.Sprintf("%s%d", localVolumeMountRoot, i)},
				},
				NodeAffinity: &corev1.VolumeNodeAffinity{Required: &corev1.NodeSelector{
					NodeSelectorTerms: []corev1.NodeSelectorTerm{{MatchExpressions: []corev1.NodeSelectorRequirement{{
						Key: corev1.LabelHostname, Operator: corev1.NodeSelectorOpIn, Values: []string{m.ID},
					}}}},
				}},
			},
		})
	}
	return out
}

// ensureLocalVolumes creates the machine's volumes that do not exist; those
// that do (a restart, a reimage: the data disks are kept) are left as they
// are, bound or not.
func ensureLocalVolumes(ctx context.Context, kube kubernetes.Interface, m provision.Machine) error {
	for _, pv := range localVolumes(m) {
		_, err := kube.CoreV1().PersistentVolumes().Create(ctx, pv, metav1.CreateOptions{FieldManager: fieldManager})
		if err != nil && !apierrors.IsAlreadyExists(err) {
			return fmt.Errorf("creating local volume %s: %w", pv.Name, err)
		}
	}
	return nil
}

// machineVolumes selects the volumes the sim made for a machine.
func machineVolumes(id string) string {
	return labels.SelectorFromSet(labels.Set{LocalVolumeLabel: "true", fleetv1alpha1.MachineLabel: id}).String()
}

// deleteLocalVolumes deletes the volumes of a wiped machine in every
// cluster the provisioner knows. A volume still bound to a claim stays
// (terminating) until the claim is deleted: Kubernetes protects it, and the
// claim's pod cannot run anywhere else anyway. A cluster that cannot be
// reached fails the wipe, which the broker retries.
func (p *Provisioner) deleteLocalVolumes(ctx context.Context, id string) error {
	var errs []error
	for _, name := range p.ownClusters() {
		c, err := p.ownCluster(ctx, name)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		pvs := c.kube.CoreV1().PersistentVolumes()
		list, err := pvs.List(ctx, metav1.ListOptions{LabelSelector: machineVolumes(id)})
		if err != nil {
			errs = append(errs, fmt.Errorf("listing the local volumes of machine %s in cluster %s: %w", id, name, err))
			continue
		}
		for _, pv := range list.Items {
			if err := pvs.Delete(ctx, pv.Name, metav1.DeleteOptions{}); err != nil && !apierrors.IsNotFound(err) {
				errs = append(errs, fmt.Errorf("deleting local volume %s in cluster %s: %w", pv.Name, name, err))
			}
		}
	}
	return errors.Join(errs...)
}

// recycleLocalVolumes cleans the volumes whose claim was deleted (Released)
// and offers them again: without a claim reference Kubernetes' volume
// controller makes them Available. The local static provisioner deletes
// and recreates such a volume; keeping the object comes to the same.
// Clusters that cannot be reached are tried again at the next resync.
func (p *Provisioner) recycleLocalVolumes(ctx context.Context) {
	kubes, _ := p.knownClusters(ctx)
	for _, kube := range kubes {
		pvs := kube.CoreV1().PersistentVolumes()
		list, err := pvs.List(ctx, metav1.ListOptions{LabelSelector: LocalVolumeLabel + "=true"})
		if err != nil {
			continue
		}
		for i := range list.Items {
			pv := &list.Items[i]
			if pv.Status.Phase != corev1.VolumeReleased || pv.DeletionTimestamp != nil || pv.Spec.ClaimRef == nil {
				continue
			}
			pv.Spec.ClaimRef = nil
			// A conflict or an error: the next resync tries again.
			_, _ = pvs.Update(ctx, pv, metav1.UpdateOptions{FieldManager: fieldManager})
		}
	}
}
