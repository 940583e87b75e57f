package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os/exec"
	"strconv"
	"strings"

	sdk "github.com/pulumi/pulumi/sdk/v3"
	"github.com/pulumi/pulumi/sdk/v3/go/common/util/logging"
	pulumirpc "github.com/pulumi/pulumi/sdk/v3/proto/go"
)

// analyzerKind is RunPluginRequest.Kind for policy packs.
const analyzerKind = "analyzer"

// RunPlugin runs a plugin written in Python and streams its output back.
//
// Policy packs (kind "analyzer") are run as `python -m pulumi.policy ENGINE
// DIR`, the entry point of the pulumi SDK that runs DIR/__main__.py; the
// pulumi-policy library serves the Analyzer protocol and prints its port.
// That library learns the stack it checks from environment variables, which
// the engine only sends later, in ConfigureStack, so the pack is started
// behind the SDK's PolicyProxy: the proxy answers Handshake and
// ConfigureStack, then starts the pack with those variables set and relays
// every other call to it.
//
// Other plugins (resource providers, tools) are run as `python -u DIR ARGS`.
func (h *languageHost) RunPlugin(req *pulumirpc.RunPluginRequest, stream pulumirpc.LanguageRuntime_RunPluginServer) error {
	ctx := stream.Context()
	info := req.GetInfo()
	env, err := newPythonEnv(info, req.GetPwd())
	if err != nil {
		return err
	}

	out := newStreamWriters(func(stdout, stderr []byte) error {
		resp := &pulumirpc.RunPluginResponse{}
		if stderr != nil {
			resp.Output = &pulumirpc.RunPluginResponse_Stderr{Stderr: stderr}
		} else {
			resp.Output = &pulumirpc.RunPluginResponse_Stdout{Stdout: stdout}
		}
		return stream.Send(resp)
	})
	stdout := out.stdout

	if err := env.tc.EnsureVenv(ctx, env.root, false, true, out.stderr, out.stderr); err != nil {
		return err
	}
	if err := env.tc.ValidateVenv(ctx); err != nil {
		return err
	}

	environ := append([]string(nil), req.GetEnv()...)
	var args []string
	var proxy *sdk.PolicyProxy
	if req.GetKind() == analyzerKind {
		proxy, stdout, err = sdk.NewPolicyProxy(ctx, out.stdout)
		if err != nil {
			return fmt.Errorf("could not start policy pack proxy: %w", err)
		}
		config, err := proxy.AwaitConfiguration(ctx)
		if err != nil {
			return fmt.Errorf("could not get stack configuration: %w", err)
		}
		policyEnv, err := policyPackEnv(config)
		if err != nil {
			return err
		}
		environ = append(environ, policyEnv...)
		// The engine's arguments (logging flags, then its address) come first;
		// pulumi.policy takes the engine address and the pack directory.
		args = append([]string{"-u", "-m", "pulumi.policy"}, req.GetArgs()...)
		args = append(args, env.programDir)
	} else {
		args = append([]string{"-u", env.programDir}, req.GetArgs()...)
	}

	cmd, err := env.tc.Command(ctx, args...)
	if err != nil {
		return err
	}
	cmd.Dir = req.GetPwd()
	cmd.Env = env.activate(ctx, environ)
	cmd.Stdout, cmd.Stderr = stdout, out.stderr
	interruptible(cmd)

	logging.V(5).Infof("language host launching plugin: %s", strings.Join(cmd.Args, " "))
	if err := cmd.Start(); err != nil {
		if proxy != nil {
			proxy.Abort(err)
		}
		return fmt.Errorf("problem executing plugin program (could not run python): %w", err)
	}
	if proxy != nil {
		// Attach reads the pack's port, connects and waits for it to exit.
		err = proxy.Attach(ctx, cmd)
	} else {
		err = cmd.Wait()
	}

	code, err := exitCode(err)
	if err != nil {
		return err
	}
	if ctx.Err() != nil {
		// The engine closed the plugin; nobody is listening any more.
		return nil
	}
	return stream.Send(&pulumirpc.RunPluginResponse{Output: &pulumirpc.RunPluginResponse_Exitcode{Exitcode: code}})
}

// exitCode turns the result of waiting for a child into its exit code.
// Errors other than a non-zero exit are returned as errors.
func exitCode(err error) (int32, error) {
	if err == nil {
		return 0, nil
	}
	var exitErr *exec.ExitError
	if errors.As(err, &exitErr) {
		return int32(exitErr.ExitCode()), nil
	}
	if errors.Is(err, io.EOF) || errors.Is(err, context.Canceled) {
		return -1, nil
	}
	return -1, err
}

// policyPackEnv returns the variables through which the Python policy
// library learns the stack it analyzes. config is nil when the engine runs
// the pack outside of a stack (e.g. `pulumi policy publish`).
func policyPackEnv(config *pulumirpc.AnalyzerStackConfigureRequest) ([]string, error) {
	if config == nil {
		return nil, nil
	}
	var env []string
	add := func(k, v string) {
		if v != "" {
			env = append(env, k+"="+v)
		}
	}
	add("PULUMI_PROJECT", config.GetProject())
	add("PULUMI_STACK", config.GetStack())
	add("PULUMI_ORGANIZATION", config.GetOrganization())
	add("PULUMI_DRY_RUN", strconv.FormatBool(config.GetDryRun()))
	cfg, err := programEnv(nil, config.GetConfig(), config.GetConfigSecretKeys())
	if err != nil {
		return nil, err
	}
	return append(env, cfg...), nil
}
