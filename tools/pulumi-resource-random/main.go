// Command pulumi-resource-random is a Pulumi resource provider plugin for the
// "random" package. It serves RandomPassword and RandomString with the
// behaviour of terraform-provider-random v3 (which the upstream pulumi-random
// provider bridges):
//
//   - every input change replaces the resource (a new value is generated);
//   - values come from crypto/rand;
//   - RandomPassword's result and bcryptHash are secrets.
package main

import (
	"fmt"
	"os"

	"github.com/pulumi/pulumi/sdk/v3/go/common/resource/plugin"
	"github.com/pulumi/pulumi/sdk/v3/go/pulumi/provider"
	pulumirpc "github.com/pulumi/pulumi/sdk/v3/proto/go"
)

// version is reported to the engine; the build sets it with
// -ldflags "-X main.version=...". It must match the plugin version the
// pulumi-random Python SDK asks for.
var version = "4.21.4"

func main() {
	err := provider.Main(providerName, func(*provider.HostClient) (pulumirpc.ResourceProviderServer, error) {
		return plugin.NewProviderServer(newRandomProvider(version)), nil
	})
	if err != nil {
		fmt.Fprintf(os.Stderr, "pulumi-resource-random: %v\n", err)
		os.Exit(1)
	}
}
