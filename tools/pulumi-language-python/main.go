// Command pulumi-language-python is a small Pulumi language host for Python
// programs and Python policy packs.
//
// The Pulumi engine starts it as a plugin, reads the gRPC port it prints on
// stdout and then drives it through the pulumirpc.LanguageRuntime service:
//
//   - Run executes a Pulumi program by running the SDK's
//     pulumi-language-python-exec script with the project's Python (the
//     virtual environment named by the `virtualenv` runtime option, or the
//     python3 on PATH);
//   - GetRequiredPackages / GetRequiredPlugins report the resource plugins
//     that the installed pulumi-* packages need;
//   - InstallDependencies creates the virtual environment and installs
//     requirements.txt into it;
//   - RunPlugin runs Python plugins, in particular policy packs
//     (`pulumi preview --policy-pack DIR`).
//
// The exec script is looked up next to this binary (as upstream does) unless
// -use-executor names another one.
package main

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"

	"github.com/pulumi/pulumi/sdk/v3/go/common/util/logging"
	"github.com/pulumi/pulumi/sdk/v3/go/common/util/rpcutil"
	pulumirpc "github.com/pulumi/pulumi/sdk/v3/proto/go"
	"google.golang.org/grpc"
)

// version is reported by GetPluginInfo; the build sets it with
// -ldflags "-X main.version=...".
var version = "0.0.0-dev"

// execScriptName is the Python shim that runs a program against the engine.
const execScriptName = "pulumi-language-python-exec"

func main() {
	var tracing, executor string
	flag.StringVar(&tracing, "tracing", "", "Emit tracing to a Zipkin-compatible tracing endpoint")
	flag.StringVar(&executor, "use-executor", "",
		"Use the given program as the executor instead of the one next to this binary")
	// The engine passes --logtostderr and -v=N when it flows its logging
	// settings to plugins. A dependency (glog) may have registered them already.
	if flag.Lookup("logtostderr") == nil {
		flag.Bool("logtostderr", false, "Log to stderr instead of to files")
	}
	if flag.Lookup("v") == nil {
		flag.Int("v", 0, "Log verbosity")
	}
	// Accepted for compatibility with older engines, which passed the runtime
	// options on the command line; they now arrive with every request.
	flag.String("virtualenv", "", "Ignored: the virtualenv runtime option arrives with each request")
	flag.String("root", "", "Ignored: the project root arrives with each request")
	flag.Parse()

	// Reads -logtostderr and -v from the parsed flags.
	logging.InitLogging(false, 0, false)

	execPath, err := findExecutor(executor)
	if err != nil {
		fatal(err)
	}

	// The engine passes its own gRPC address as the only positional argument.
	engineAddress := flag.Arg(0)

	host := newLanguageHost(execPath, engineAddress, tracing)
	handle, err := rpcutil.ServeWithOptions(rpcutil.ServeOptions{
		Init: func(srv *grpc.Server) error {
			pulumirpc.RegisterLanguageRuntimeServer(srv, host)
			return nil
		},
	})
	if err != nil {
		fatal(fmt.Errorf("could not start language host RPC server: %w", err))
	}

	// The spawner reads this line to learn where to reach us.
	fmt.Printf("%d\n", handle.Port)

	if err := <-handle.Done; err != nil {
		fatal(fmt.Errorf("language host RPC stopped serving: %w", err))
	}
}

// findExecutor returns the path of the pulumi-language-python-exec script:
// the given one, or the one installed next to this executable.
func findExecutor(given string) (string, error) {
	if given != "" {
		logging.V(3).Infof("language host asked to use specific executor: %q", given)
		return given, nil
	}
	self, err := os.Executable()
	if err != nil {
		return "", fmt.Errorf("could not determine current executable: %w", err)
	}
	if resolved, err := filepath.EvalSymlinks(self); err == nil {
		self = resolved
	}
	path := filepath.Join(filepath.Dir(self), execScriptName)
	if _, err := os.Stat(path); err != nil {
		return "", fmt.Errorf("missing executor %s: %w", path, err)
	}
	logging.V(3).Infof("language host identified executor from path: %q", path)
	return path, nil
}

func fatal(err error) {
	fmt.Fprintf(os.Stderr, "pulumi-language-python: %v\n", err)
	os.Exit(1)
}
