package localpath

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	corev1 "k8s.io/api/core/v1"
	storagev1 "k8s.io/api/storage/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes/fake"
	corelisters "k8s.io/client-go/listers/core/v1"
	storagelisters "k8s.io/client-go/listers/storage/v1"
	"k8s.io/client-go/tools/cache"
)

const testProvisioner = "test/local-path"

func storageClass() *storagev1.StorageClass {
	wffc := storagev1.VolumeBindingWaitForFirstConsumer
	del := corev1.PersistentVolumeReclaimDelete
	return &storagev1.StorageClass{
		ObjectMeta:        metav1.ObjectMeta{Name: "local-path"},
		Provisioner:       testProvisioner,
		VolumeBindingMode: &wffc,
		ReclaimPolicy:     &del,
	}
}

func claim(name, node string) *corev1.PersistentVolumeClaim {
	class := "local-path"
	pvc := &corev1.PersistentVolumeClaim{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "ns", UID: types.UID("uid-" + name)},
		Spec: corev1.PersistentVolumeClaimSpec{
			StorageClassName: &class,
			AccessModes:      []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce},
			Resources: corev1.VolumeResourceRequirements{
				Requests: corev1.ResourceList{corev1.ResourceStorage: resource.MustParse("1Gi")},
			},
		},
		Status: corev1.PersistentVolumeClaimStatus{Phase: corev1.ClaimPending},
	}
	if node != "" {
		pvc.Annotations = map[string]string{annSelectedNode: node}
	}
	return pvc
}

// newTestProvisioner wires listers backed by plain indexers holding objs and
// a fake clientset holding the same objects.
func newTestProvisioner(t *testing.T, objs ...runtime.Object) (*provisioner, *fake.Clientset) {
	t.Helper()
	client := fake.NewClientset(objs...)
	pvcs := cache.NewIndexer(cache.MetaNamespaceKeyFunc, cache.Indexers{})
	pvs := cache.NewIndexer(cache.MetaNamespaceKeyFunc, cache.Indexers{})
	classes := cache.NewIndexer(cache.MetaNamespaceKeyFunc, cache.Indexers{})
	for _, o := range objs {
		var err error
		switch o.(type) {
		case *corev1.PersistentVolumeClaim:
			err = pvcs.Add(o)
		case *corev1.PersistentVolume:
			err = pvs.Add(o)
		case *storagev1.StorageClass:
			err = classes.Add(o)
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	return &provisioner{
		options: options{name: testProvisioner, baseDir: t.TempDir(), nodeName: "node-a"},
		client:  client,
		pvcs:    corelisters.NewPersistentVolumeClaimLister(pvcs),
		pvs:     corelisters.NewPersistentVolumeLister(pvs),
		classes: storagelisters.NewStorageClassLister(classes),
	}, client
}

func TestProvisionWaitsForNodeAndCreatesBoundVolume(t *testing.T) {
	ctx := context.Background()
	p, client := newTestProvisioner(t, storageClass(), claim("waiting", ""), claim("other", "node-b"), claim("mine", "node-a"))
	p.reconcile(ctx)

	pvs, err := client.CoreV1().PersistentVolumes().List(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if len(pvs.Items) != 1 {
		t.Fatalf("want exactly one PV (for the claim scheduled to this node), got %d", len(pvs.Items))
	}
	pv := pvs.Items[0]
	if pv.Spec.ClaimRef == nil || pv.Spec.ClaimRef.Name != "mine" {
		t.Fatalf("PV not pre-bound to claim 'mine': %+v", pv.Spec.ClaimRef)
	}
	if pv.Spec.PersistentVolumeReclaimPolicy != corev1.PersistentVolumeReclaimDelete {
		t.Errorf("reclaim policy %q, want Delete", pv.Spec.PersistentVolumeReclaimPolicy)
	}
	if got := pv.Spec.Capacity[corev1.ResourceStorage]; got.String() != "1Gi" {
		t.Errorf("capacity %s, want 1Gi", got.String())
	}
	dir := pv.Spec.HostPath.Path
	if filepath.Dir(dir) != p.baseDir {
		t.Errorf("volume dir %s not directly under %s", dir, p.baseDir)
	}
	info, err := os.Stat(dir)
	if err != nil {
		t.Fatal(err)
	}
	if info.Mode().Perm() != 0o777 {
		t.Errorf("volume dir mode %v, want 0777 so any pod uid can write", info.Mode().Perm())
	}
	if term := pv.Spec.NodeAffinity.Required.NodeSelectorTerms[0].MatchExpressions[0]; term.Values[0] != "node-a" {
		t.Errorf("node affinity %v, want node-a", term.Values)
	}
}

func TestExpandRecordsNewSize(t *testing.T) {
	ctx := context.Background()
	pv := &corev1.PersistentVolume{
		ObjectMeta: metav1.ObjectMeta{Name: "pv1", Annotations: map[string]string{annProvisionedBy: testProvisioner}},
		Spec: corev1.PersistentVolumeSpec{
			Capacity: corev1.ResourceList{corev1.ResourceStorage: resource.MustParse("1Gi")},
		},
	}
	pvc := claim("grow", "node-a")
	pvc.Spec.VolumeName = "pv1"
	pvc.Spec.Resources.Requests[corev1.ResourceStorage] = resource.MustParse("2Gi")
	pvc.Status = corev1.PersistentVolumeClaimStatus{
		Phase:    corev1.ClaimBound,
		Capacity: corev1.ResourceList{corev1.ResourceStorage: resource.MustParse("1Gi")},
	}
	p, client := newTestProvisioner(t, storageClass(), pv, pvc)
	p.reconcile(ctx)

	gotPVC, err := client.CoreV1().PersistentVolumeClaims("ns").Get(ctx, "grow", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if got := gotPVC.Status.Capacity[corev1.ResourceStorage]; got.String() != "2Gi" {
		t.Errorf("claim capacity %s, want 2Gi", got.String())
	}
	gotPV, err := client.CoreV1().PersistentVolumes().Get(ctx, "pv1", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if got := gotPV.Spec.Capacity[corev1.ResourceStorage]; got.String() != "2Gi" {
		t.Errorf("volume capacity %s, want 2Gi", got.String())
	}
}

func TestReleaseDeletesOnlyInsideBaseDir(t *testing.T) {
	ctx := context.Background()
	p, client := newTestProvisioner(t)
	inside := filepath.Join(p.baseDir, "pvc-1")
	outside := t.TempDir()
	if err := os.MkdirAll(inside, 0o755); err != nil {
		t.Fatal(err)
	}
	released := func(name, dir string) *corev1.PersistentVolume {
		pv := &corev1.PersistentVolume{
			ObjectMeta: metav1.ObjectMeta{Name: name, Annotations: map[string]string{annProvisionedBy: testProvisioner, annPath: dir}},
			Spec:       corev1.PersistentVolumeSpec{PersistentVolumeReclaimPolicy: corev1.PersistentVolumeReclaimDelete},
			Status:     corev1.PersistentVolumeStatus{Phase: corev1.VolumeReleased},
		}
		if _, err := client.CoreV1().PersistentVolumes().Create(ctx, pv, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		return pv
	}
	if err := p.release(ctx, released("in", inside)); err != nil {
		t.Fatalf("release inside base dir: %v", err)
	}
	if _, err := os.Stat(inside); !os.IsNotExist(err) {
		t.Errorf("%s still exists after release", inside)
	}
	if _, err := client.CoreV1().PersistentVolumes().Get(ctx, "in", metav1.GetOptions{}); err == nil {
		t.Error("released PV was not deleted")
	}
	if err := p.release(ctx, released("out", outside)); err == nil {
		t.Error("release of a directory outside the base dir did not fail")
	}
	if _, err := os.Stat(outside); err != nil {
		t.Errorf("directory outside the base dir was touched: %v", err)
	}
}
