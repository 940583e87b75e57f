// Command pulumi-resource-kubernetes is the Pulumi Kubernetes provider plugin,
// built from github.com/pulumi/pulumi-kubernetes/provider/v4 as pinned in
// go.mod.
//
// It does what upstream's cmd/pulumi-resource-kubernetes does. That package
// cannot be built from the module proxy as is: it embeds schema-embed.json
// and terraform-mapping-embed.json, which upstream generates at build time
// and which are therefore missing from the module zip. embedgen generates
// them (plus embed_gen.go, which embeds them and sets the variables below)
// outside the repository, and `go build -overlay` adds them to this package;
// scripts/bootstrap-tools.sh does both. Built without the overlay, the
// binary refuses to start.
//
// The provider version is set at link time:
// -ldflags "-X github.com/pulumi/pulumi-kubernetes/provider/v4/pkg/version.Version=4.25.0".
package main

import (
	"fmt"
	"os"

	"github.com/pulumi/pulumi-kubernetes/provider/v4/pkg/provider"
	"github.com/pulumi/pulumi-kubernetes/provider/v4/pkg/version"
)

const providerName = "kubernetes"

// Set by the generated embed_gen.go.
var pulumiSchema, terraformMapping []byte

func main() {
	if len(pulumiSchema) == 0 || len(terraformMapping) == 0 {
		fmt.Fprintln(os.Stderr, "pulumi-resource-kubernetes: built without the generated schema; build it with scripts/bootstrap-tools.sh")
		os.Exit(1)
	}
	provider.Serve(providerName, version.Version, pulumiSchema, terraformMapping)
}
