package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"time"

	"github.com/pulumi/pulumi/sdk/v3/go/common/util/logging"
	pulumirpc "github.com/pulumi/pulumi/sdk/v3/proto/go"
)

const (
	// The Python SDK reads the stack configuration from this variable (JSON object).
	configEnvVar = "PULUMI_CONFIG"
	// ... and the names of the secret configuration keys from this one (JSON array).
	configSecretKeysEnvVar = "PULUMI_CONFIG_SECRET_KEYS"

	// The exec script exits with this code after it has shown the user an
	// actionable error; the engine then stops without adding its own message.
	exitCodeUserActionable = 32

	// How long an interrupted child gets to exit before it is killed.
	interruptGrace = 10 * time.Second
)

// Run executes the program with pulumi-language-python-exec, which connects
// it to the engine and the resource monitor.
func (h *languageHost) Run(ctx context.Context, req *pulumirpc.RunRequest) (*pulumirpc.RunResponse, error) {
	env, err := newPythonEnv(req.GetInfo(), req.GetPwd())
	if err != nil {
		return nil, err
	}

	// Like upstream, create the virtual environment (and install
	// requirements.txt into it) on first use; then insist that it is valid.
	if err := env.tc.EnsureVenv(ctx, env.root, false /*useLanguageVersionTools*/, true, /*showOutput*/
		os.Stdout, os.Stderr); err != nil {
		return nil, err
	}
	if err := env.tc.ValidateVenv(ctx); err != nil {
		return nil, err
	}

	if env.typechecker != "" {
		if msg, err := h.typecheck(ctx, env); err != nil {
			return nil, err
		} else if msg != "" {
			return &pulumirpc.RunResponse{Error: msg}, nil
		}
	}

	args := append([]string{"-u", h.execPath}, h.execArguments(req)...)
	cmd, err := env.tc.Command(ctx, args...)
	if err != nil {
		return nil, err
	}
	cmd.Env, err = programEnv(env.activate(ctx, os.Environ()), req.GetConfig(), req.GetConfigSecretKeys())
	if err != nil {
		return nil, err
	}
	cmd.Stdout, cmd.Stderr = os.Stdout, os.Stderr
	interruptible(cmd)

	logging.V(5).Infof("language host launching process: %s", strings.Join(cmd.Args, " "))
	if err := cmd.Run(); err != nil {
		var exitErr *exec.ExitError
		if !errors.As(err, &exitErr) {
			return nil, fmt.Errorf("problem executing program (could not run language executor): %w", err)
		}
		code := exitErr.ExitCode()
		if code == exitCodeUserActionable {
			return &pulumirpc.RunResponse{Bail: true}, nil
		}
		if code < 0 {
			return &pulumirpc.RunResponse{Error: fmt.Sprintf("Program exited unexpectedly: %v", exitErr)}, nil
		}
		return &pulumirpc.RunResponse{Error: fmt.Sprintf("Program exited with non-zero exit code: %d", code)}, nil
	}
	return &pulumirpc.RunResponse{}, nil
}

// execArguments builds the command line of pulumi-language-python-exec:
// options first, then the program (a file or a directory holding
// __main__.py, relative to --pwd) and the program's own arguments.
func (h *languageHost) execArguments(req *pulumirpc.RunRequest) []string {
	var args []string
	add := func(name, value string) {
		if value != "" {
			args = append(args, "--"+name, value)
		}
	}
	add("monitor", req.GetMonitorAddress())
	add("engine", h.engine())
	add("project", req.GetProject())
	add("stack", req.GetStack())
	add("pwd", req.GetPwd())
	add("dry_run", strconv.FormatBool(req.GetDryRun()))
	// The script converts --parallel with int(), so it must always be present.
	add("parallel", strconv.Itoa(int(req.GetParallel())))
	add("tracing", h.tracing)
	add("organization", req.GetOrganization())
	add("root_directory", req.GetInfo().GetRootDirectory())

	program := req.GetProgram()
	if program == "" {
		program = "."
	}
	args = append(args, program)
	return append(args, req.GetArgs()...)
}

// programEnv returns environ plus the stack configuration variables the
// Python SDK reads at start-up.
func programEnv(environ []string, config map[string]string, secretKeys []string) ([]string, error) {
	env := append([]string(nil), environ...)
	if config != nil {
		b, err := json.Marshal(config)
		if err != nil {
			return nil, fmt.Errorf("serializing configuration: %w", err)
		}
		env = append(env, configEnvVar+"="+string(b))
	}
	if len(secretKeys) > 0 {
		b, err := json.Marshal(secretKeys)
		if err != nil {
			return nil, fmt.Errorf("serializing secret configuration keys: %w", err)
		}
		env = append(env, configSecretKeysEnvVar+"="+string(b))
	}
	return env, nil
}

// typecheck runs the configured type checker over the program directory. It
// returns a non-empty message when the program does not type-check.
func (h *languageHost) typecheck(ctx context.Context, env *pythonEnv) (string, error) {
	cmd, err := env.tc.ModuleCommand(ctx, env.typechecker, env.programDir)
	if err != nil {
		return "", err
	}
	cmd.Dir = env.programDir
	cmd.Env = env.activate(ctx, os.Environ())
	cmd.Stdout, cmd.Stderr = os.Stdout, os.Stderr
	if err := cmd.Run(); err != nil {
		var exitErr *exec.ExitError
		if errors.As(err, &exitErr) {
			return fmt.Sprintf("%s failed with exit code %d", env.typechecker, exitErr.ExitCode()), nil
		}
		return "", fmt.Errorf("running %s (is it installed in the virtual environment?): %w", env.typechecker, err)
	}
	return "", nil
}

// interruptible makes a cancelled context interrupt cmd (SIGINT) rather than
// kill it outright, and kill it only if it has not exited after a grace period.
func interruptible(cmd *exec.Cmd) {
	cmd.Cancel = func() error { return cmd.Process.Signal(os.Interrupt) }
	cmd.WaitDelay = interruptGrace
}
