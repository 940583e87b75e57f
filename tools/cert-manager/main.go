// Command cert-manager-controller runs cert-manager's own certificate
// controllers for the local test cluster.
//
// cert-manager does not publish its cmd/controller module, so this thin main
// wires the module's controller packages the way cmd/controller does, with
// only what a cluster issuing Certificates from CA and self-signed issuers
// needs: the Issuer and ClusterIssuer controllers, the CertificateRequest
// approver and its CA and self-signed signers, and the six Certificate
// controllers (trigger, key manager, request manager, issuing, readiness,
// revision manager). ACME, Vault, Venafi, the ingress and Gateway shims, the
// metrics server and leader election are left out: one replica runs here
// and issues from in-cluster CAs only.
//
// The module path sits under github.com/cert-manager/cert-manager/ so that it
// may import the module's internal packages, as cmd/controller does.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"sort"
	"syscall"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/cert-manager/cert-manager/pkg/controller"
	"github.com/cert-manager/cert-manager/pkg/controller/certificaterequests/approver"
	crca "github.com/cert-manager/cert-manager/pkg/controller/certificaterequests/ca"
	crselfsigned "github.com/cert-manager/cert-manager/pkg/controller/certificaterequests/selfsigned"
	"github.com/cert-manager/cert-manager/pkg/controller/certificates/issuing"
	"github.com/cert-manager/cert-manager/pkg/controller/certificates/keymanager"
	"github.com/cert-manager/cert-manager/pkg/controller/certificates/readiness"
	"github.com/cert-manager/cert-manager/pkg/controller/certificates/requestmanager"
	"github.com/cert-manager/cert-manager/pkg/controller/certificates/revisionmanager"
	"github.com/cert-manager/cert-manager/pkg/controller/certificates/trigger"
	"github.com/cert-manager/cert-manager/pkg/controller/clusterissuers"
	"github.com/cert-manager/cert-manager/pkg/controller/issuers"
	logf "github.com/cert-manager/cert-manager/pkg/logs"
	"github.com/cert-manager/cert-manager/pkg/util"

	_ "github.com/cert-manager/cert-manager/pkg/issuer/ca"
	_ "github.com/cert-manager/cert-manager/pkg/issuer/selfsigned"
)

// enabledControllers are the controllers this binary runs, by the names
// cert-manager registers them under.
var enabledControllers = []string{
	issuers.ControllerName,
	clusterissuers.ControllerName,
	approver.ControllerName,
	crca.CRControllerName,
	crselfsigned.CRControllerName,
	trigger.ControllerName,
	keymanager.ControllerName,
	requestmanager.ControllerName,
	issuing.ControllerName,
	readiness.ControllerName,
	revisionmanager.ControllerName,
}

// options are the command-line settings; everything else keeps
// cert-manager's defaults.
type options struct {
	kubeconfig               string
	namespace                string
	clusterResourceNamespace string
	workers                  int
}

func parseOptions() options {
	var o options
	flag.StringVar(&o.kubeconfig, "kubeconfig", "", "kubeconfig file; in-cluster configuration when empty")
	flag.StringVar(&o.namespace, "namespace", "", "namespace to watch; all namespaces when empty")
	flag.StringVar(&o.clusterResourceNamespace, "cluster-resource-namespace", "cert-manager",
		"namespace holding the Secrets that ClusterIssuers refer to")
	flag.IntVar(&o.workers, "concurrent-workers", 5, "workers per controller")
	flag.Parse()
	return o
}

func run(ctx context.Context, o options) error {
	log := logf.FromContext(ctx, "controller")
	log.Info("starting cert-manager controller", "version", util.VersionInfo().GitVersion, "controllers", enabledControllers)

	factory, err := controller.NewContextFactory(ctx, controller.ContextOptions{
		Kubeconfig:         o.kubeconfig,
		KubernetesAPIQPS:   20,
		KubernetesAPIBurst: 50,
		Namespace:          o.namespace,
		IssuerOptions: controller.IssuerOptions{
			ClusterResourceNamespace: o.clusterResourceNamespace,
		},
		CertificateOptions: controller.CertificateOptions{
			CertificateRequestMinimumBackoffDuration: time.Hour,
			CertificateRequestMaximumBackoffDuration: 32 * time.Hour,
		},
	})
	if err != nil {
		return fmt.Errorf("building the controller context: %w", err)
	}
	base, err := factory.Build()
	if err != nil {
		return fmt.Errorf("building the controller context: %w", err)
	}

	group, ctx := errgroup.WithContext(ctx)
	known := controller.Known()
	names := append([]string(nil), enabledControllers...)
	sort.Strings(names)
	for _, name := range names {
		construct, ok := known[name]
		if !ok {
			return fmt.Errorf("controller %q is not registered in this cert-manager version", name)
		}
		iface, err := construct(factory)
		if err != nil {
			return fmt.Errorf("starting controller %s: %w", name, err)
		}
		group.Go(func() error { return iface.Run(o.workers, ctx) })
	}

	base.SharedInformerFactory.Start(ctx.Done())
	base.KubeSharedInformerFactory.Start(ctx.Done())
	base.HTTP01ResourceMetadataInformersFactory.Start(ctx.Done())

	err = group.Wait()
	base.HTTP01ResourceMetadataInformersFactory.Shutdown()
	base.KubeSharedInformerFactory.Shutdown()
	base.SharedInformerFactory.Shutdown()
	return err
}

func main() {
	logf.InitLogs()
	defer logf.FlushLogs()
	o := parseOptions()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, o); err != nil && ctx.Err() == nil {
		fmt.Fprintln(os.Stderr, "cert-manager-controller:", err)
		os.Exit(1)
	}
}
