package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"

	pulumirpc "github.com/pulumi/pulumi/sdk/v3/proto/go"
	"github.com/pulumi/pulumi/sdk/v3/python/toolchain"
)

// pythonEnv is the Python environment one request runs in: the toolchain
// chosen by the project's runtime options and the directories it works in.
//
// Runtime options understood (Pulumi.yaml or PulumiPolicy.yaml,
// `runtime.options`):
//
//	virtualenv:  path of the virtual environment, relative to the project root
//	toolchain:   pip (default), uv or poetry
//	typechecker: mypy or pyright, run before the program
type pythonEnv struct {
	tc            toolchain.Toolchain
	toolchainName string
	// root is the project root: the directory of Pulumi.yaml / PulumiPolicy.yaml.
	root string
	// programDir is the directory holding the program's entry point.
	programDir string
	// venv is the virtualenv option as written, "" for the ambient python.
	venv string
	// typechecker is "", "mypy" or "pyright".
	typechecker string
}

// newPythonEnv resolves the environment for a request. info may be nil for
// old engines, in which case fallbackDir (else the working directory) is
// both root and program directory.
func newPythonEnv(info *pulumirpc.ProgramInfo, fallbackDir string) (*pythonEnv, error) {
	root := info.GetRootDirectory()
	if root == "" {
		root = fallbackDir
	}
	if root == "" {
		cwd, err := os.Getwd()
		if err != nil {
			return nil, fmt.Errorf("getting the working directory: %w", err)
		}
		root = cwd
	}
	programDir := info.GetProgramDirectory()
	if programDir == "" {
		programDir = root
	}

	env := &pythonEnv{root: root, programDir: programDir, toolchainName: "pip"}
	opts := toolchain.PythonOptions{Root: root, ProgramDir: programDir, Toolchain: toolchain.Pip}

	var raw map[string]any
	if o := info.GetOptions(); o != nil {
		raw = o.AsMap()
	}
	if v, ok := raw["virtualenv"]; ok {
		s, ok := v.(string)
		if !ok {
			return nil, fmt.Errorf("runtime option virtualenv must be a string, got %T", v)
		}
		env.venv = s
		opts.Virtualenv = s
	}
	if v, ok := raw["toolchain"]; ok {
		s, _ := v.(string)
		switch s {
		case "pip":
			opts.Toolchain = toolchain.Pip
		case "uv":
			opts.Toolchain = toolchain.Uv
		case "poetry":
			opts.Toolchain = toolchain.Poetry
		default:
			return nil, fmt.Errorf("unsupported runtime option toolchain %v (want pip, uv or poetry)", v)
		}
		env.toolchainName = s
	}
	if v, ok := raw["typechecker"]; ok {
		s, _ := v.(string)
		switch s {
		case "mypy":
			opts.Typechecker = toolchain.TypeCheckerMypy
		case "pyright":
			opts.Typechecker = toolchain.TypeCheckerPyright
		default:
			return nil, fmt.Errorf("unsupported runtime option typechecker %v (want mypy or pyright)", v)
		}
		env.typechecker = s
	}

	tc, err := toolchain.ResolveToolchain(opts)
	if err != nil {
		return nil, err
	}
	env.tc = tc
	return env, nil
}

// venvPath returns the absolute path of the virtual environment, or "" when
// the ambient python is used.
func (e *pythonEnv) venvPath(ctx context.Context) string {
	if e.venv == "" && e.toolchainName == "pip" {
		return ""
	}
	p, err := e.tc.VirtualEnvPath(ctx)
	if err != nil || p == "" {
		return ""
	}
	if !filepath.IsAbs(p) {
		p = filepath.Join(e.root, p)
	}
	return p
}

// activate returns environ with the virtual environment (if any) activated.
func (e *pythonEnv) activate(ctx context.Context, environ []string) []string {
	if venv := e.venvPath(ctx); venv != "" {
		return toolchain.ActivateVirtualEnv(environ, venv)
	}
	return environ
}
