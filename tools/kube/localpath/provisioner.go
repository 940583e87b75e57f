// Package localpath is a minimal dynamic provisioner for a single-node test
// cluster. It runs as a host process (no helper pods: this machine cannot run
// privileged containers), so it creates and removes the volume directories
// itself, and it "expands" volumes by recording the new size, since a local
// volume's directory has no size of its own.
package localpath

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"
	corev1 "k8s.io/api/core/v1"
	storagev1 "k8s.io/api/storage/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	corelisters "k8s.io/client-go/listers/core/v1"
	storagelisters "k8s.io/client-go/listers/storage/v1"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/clientcmd"
	"k8s.io/klog/v2"
)

const (
	annSelectedNode  = "volume.kubernetes.io/selected-node"
	annProvisionedBy = "pv.kubernetes.io/provisioned-by"
	annPath          = "local-path.sophia.local/path"
)

type options struct {
	kubeconfig string
	name       string
	baseDir    string
	nodeName   string
	resync     time.Duration
}

// NewCommand returns the "local-path-provisioner" command.
func NewCommand() *cobra.Command {
	o := options{}
	cmd := &cobra.Command{
		Use:          "local-path-provisioner",
		Short:        "Provision local volumes on this node for PVCs of a StorageClass",
		SilenceUsage: true,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if o.nodeName == "" {
				return fmt.Errorf("--node-name is required")
			}
			ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
			defer stop()
			return run(ctx, o)
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.kubeconfig, "kubeconfig", "", "kubeconfig of the cluster")
	f.StringVar(&o.name, "provisioner-name", "sophia.local/local-path", "provisioner name in StorageClass.provisioner")
	f.StringVar(&o.baseDir, "base-dir", "/var/lib/sophia-redis/local-path", "directory holding one sub-directory per volume")
	f.StringVar(&o.nodeName, "node-name", "", "the node whose disk this process serves")
	f.DurationVar(&o.resync, "resync", 2*time.Second, "how often every claim is looked at again")
	return cmd
}

type provisioner struct {
	options
	client  kubernetes.Interface
	pvcs    corelisters.PersistentVolumeClaimLister
	pvs     corelisters.PersistentVolumeLister
	classes storagelisters.StorageClassLister
}

func run(ctx context.Context, o options) error {
	cfg, err := clientcmd.BuildConfigFromFlags("", o.kubeconfig)
	if err != nil {
		return err
	}
	client, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(o.baseDir, 0o755); err != nil {
		return err
	}
	factory := informers.NewSharedInformerFactory(client, 0)
	p := &provisioner{
		options: o,
		client:  client,
		pvcs:    factory.Core().V1().PersistentVolumeClaims().Lister(),
		pvs:     factory.Core().V1().PersistentVolumes().Lister(),
		classes: factory.Storage().V1().StorageClasses().Lister(),
	}
	// Any change only pokes the loop; the loop looks at everything, which is
	// cheap at this cluster's size and cannot miss an event.
	kick := make(chan struct{}, 1)
	poke := cache.ResourceEventHandlerFuncs{
		AddFunc:    func(any) { trigger(kick) },
		UpdateFunc: func(any, any) { trigger(kick) },
		DeleteFunc: func(any) { trigger(kick) },
	}
	for _, inf := range []cache.SharedIndexInformer{
		factory.Core().V1().PersistentVolumeClaims().Informer(),
		factory.Core().V1().PersistentVolumes().Informer(),
		factory.Storage().V1().StorageClasses().Informer(),
	} {
		if _, err := inf.AddEventHandler(poke); err != nil {
			return err
		}
	}
	factory.Start(ctx.Done())
	for typ, ok := range factory.WaitForCacheSync(ctx.Done()) {
		if !ok {
			return fmt.Errorf("cache for %v did not sync", typ)
		}
	}
	klog.InfoS("local-path provisioner started", "name", o.name, "baseDir", o.baseDir, "node", o.nodeName)
	ticker := time.NewTicker(o.resync)
	defer ticker.Stop()
	for {
		p.reconcile(ctx)
		select {
		case <-ctx.Done():
			return nil
		case <-kick:
		case <-ticker.C:
		}
	}
}

func trigger(ch chan struct{}) {
	select {
	case ch <- struct{}{}:
	default:
	}
}

func (p *provisioner) reconcile(ctx context.Context) {
	claims, err := p.pvcs.List(labels.Everything())
	if err != nil {
		klog.ErrorS(err, "listing claims")
		return
	}
	for _, pvc := range claims {
		class := p.classOf(pvc)
		if class == nil {
			continue
		}
		var err error
		switch {
		case pvc.Spec.VolumeName == "" && pvc.Status.Phase == corev1.ClaimPending:
			err = p.provision(ctx, pvc, class)
		case pvc.Status.Phase == corev1.ClaimBound:
			err = p.expand(ctx, pvc)
		}
		if err != nil {
			klog.ErrorS(err, "claim", "pvc", klog.KObj(pvc))
		}
	}
	volumes, err := p.pvs.List(labels.Everything())
	if err != nil {
		klog.ErrorS(err, "listing volumes")
		return
	}
	for _, pv := range volumes {
		if err := p.release(ctx, pv); err != nil {
			klog.ErrorS(err, "volume", "pv", klog.KObj(pv))
		}
	}
}

func (p *provisioner) classOf(pvc *corev1.PersistentVolumeClaim) *storagev1.StorageClass {
	if pvc.Spec.StorageClassName == nil || *pvc.Spec.StorageClassName == "" {
		return nil
	}
	class, err := p.classes.Get(*pvc.Spec.StorageClassName)
	if err != nil || class.Provisioner != p.name {
		return nil
	}
	return class
}

// provision creates the directory and a PV pre-bound to the claim. With
// WaitForFirstConsumer it waits for the scheduler's node choice, and refuses
// claims meant for another node.
func (p *provisioner) provision(ctx context.Context, pvc *corev1.PersistentVolumeClaim, class *storagev1.StorageClass) error {
	node := pvc.Annotations[annSelectedNode]
	immediate := class.VolumeBindingMode == nil || *class.VolumeBindingMode == storagev1.VolumeBindingImmediate
	if node == "" && !immediate {
		return nil
	}
	if node == "" {
		node = p.nodeName
	}
	if node != p.nodeName {
		return nil
	}
	if pvc.Spec.VolumeMode != nil && *pvc.Spec.VolumeMode == corev1.PersistentVolumeBlock {
		return fmt.Errorf("block volumes are not supported")
	}
	size, ok := pvc.Spec.Resources.Requests[corev1.ResourceStorage]
	if !ok {
		return fmt.Errorf("claim has no storage request")
	}
	name := "pvc-" + string(pvc.UID)
	if _, err := p.pvs.Get(name); err == nil {
		return nil // made on an earlier pass; the PV controller binds it
	}
	dir := filepath.Join(p.baseDir, fmt.Sprintf("%s_%s_%s", name, pvc.Namespace, pvc.Name))
	if err := os.MkdirAll(dir, 0o777); err != nil {
		return err
	}
	// Pods may run as any uid, with or without an fsGroup: open it to all.
	if err := os.Chmod(dir, 0o777); err != nil {
		return err
	}
	reclaim := corev1.PersistentVolumeReclaimDelete
	if class.ReclaimPolicy != nil {
		reclaim = *class.ReclaimPolicy
	}
	pv := &corev1.PersistentVolume{
		ObjectMeta: metav1.ObjectMeta{
			Name:        name,
			Annotations: map[string]string{annProvisionedBy: p.name, annPath: dir},
		},
		Spec: corev1.PersistentVolumeSpec{
			Capacity:                      corev1.ResourceList{corev1.ResourceStorage: size},
			AccessModes:                   pvc.Spec.AccessModes,
			PersistentVolumeReclaimPolicy: reclaim,
			StorageClassName:              class.Name,
			MountOptions:                  class.MountOptions,
			ClaimRef: &corev1.ObjectReference{
				Kind: "PersistentVolumeClaim", APIVersion: "v1",
				Namespace: pvc.Namespace, Name: pvc.Name, UID: pvc.UID,
			},
			// A local volume, not a hostPath one: the kubelet reports its usage
			// (kubelet_volume_stats_*), which the volume-filling alert reads.
			PersistentVolumeSource: corev1.PersistentVolumeSource{
				Local: &corev1.LocalVolumeSource{Path: dir},
			},
			NodeAffinity: &corev1.VolumeNodeAffinity{Required: &corev1.NodeSelector{
				NodeSelectorTerms: []corev1.NodeSelectorTerm{{MatchExpressions: []corev1.NodeSelectorRequirement{{
					Key: "kubernetes.io/hostname", Operator: corev1.NodeSelectorOpIn, Values: []string{node},
				}}}},
			}},
		},
	}
	if _, err := p.client.CoreV1().PersistentVolumes().Create(ctx, pv, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		return err
	}
	klog.InfoS("provisioned", "pvc", klog.KObj(pvc), "pv", name, "path", dir, "size", size.String())
	return nil
}

// expand plays the external resizer's part: a local directory needs no
// resizing, so the new size is simply recorded on the PV and the claim.
func (p *provisioner) expand(ctx context.Context, pvc *corev1.PersistentVolumeClaim) error {
	want, ok := pvc.Spec.Resources.Requests[corev1.ResourceStorage]
	if !ok {
		return nil
	}
	have, ok := pvc.Status.Capacity[corev1.ResourceStorage]
	if ok && want.Cmp(have) <= 0 {
		return nil
	}
	pv, err := p.pvs.Get(pvc.Spec.VolumeName)
	if err != nil || pv.Annotations[annProvisionedBy] != p.name {
		return nil
	}
	if cur := pv.Spec.Capacity[corev1.ResourceStorage]; cur.Cmp(want) < 0 {
		pv = pv.DeepCopy()
		pv.Spec.Capacity[corev1.ResourceStorage] = want
		if _, err := p.client.CoreV1().PersistentVolumes().Update(ctx, pv, metav1.UpdateOptions{}); err != nil {
			return err
		}
	}
	pvc = pvc.DeepCopy()
	pvc.Status.Capacity = corev1.ResourceList{corev1.ResourceStorage: want}
	pvc.Status.AllocatedResources = corev1.ResourceList{corev1.ResourceStorage: want}
	pvc.Status.AllocatedResourceStatuses = nil
	pvc.Status.Conditions = nil
	if _, err := p.client.CoreV1().PersistentVolumeClaims(pvc.Namespace).UpdateStatus(ctx, pvc, metav1.UpdateOptions{}); err != nil {
		return err
	}
	klog.InfoS("expanded", "pvc", klog.KObj(pvc), "size", want.String())
	return nil
}

// release deletes the directory and the PV of a released claim whose
// reclaim policy is Delete.
func (p *provisioner) release(ctx context.Context, pv *corev1.PersistentVolume) error {
	if pv.Annotations[annProvisionedBy] != p.name || pv.DeletionTimestamp != nil ||
		pv.Status.Phase != corev1.VolumeReleased ||
		pv.Spec.PersistentVolumeReclaimPolicy != corev1.PersistentVolumeReclaimDelete {
		return nil
	}
	dir := pv.Annotations[annPath]
	base := filepath.Clean(p.baseDir) + string(filepath.Separator)
	if dir == "" || !strings.HasPrefix(filepath.Clean(dir), base) {
		return fmt.Errorf("refusing to remove %q: not under %s", dir, p.baseDir)
	}
	if err := os.RemoveAll(dir); err != nil {
		return err
	}
	err := p.client.CoreV1().PersistentVolumes().Delete(ctx, pv.Name, metav1.DeleteOptions{})
	if err != nil && !apierrors.IsNotFound(err) {
		return err
	}
	klog.InfoS("deleted", "pv", pv.Name, "path", dir)
	return nil
}
