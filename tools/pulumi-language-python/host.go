package main

import (
	"context"
	"fmt"
	"sync"

	pulumirpc "github.com/pulumi/pulumi/sdk/v3/proto/go"
	"google.golang.org/protobuf/types/known/emptypb"
)

// languageHost implements pulumirpc.LanguageRuntimeServer for Python.
//
// Code generation (GenerateProgram, GenerateProject, GeneratePackage), Pack
// and Link are left unimplemented: `pulumi convert` and `pulumi package`
// are not needed by the projects this host serves.
type languageHost struct {
	pulumirpc.UnimplementedLanguageRuntimeServer

	// execPath is the pulumi-language-python-exec script.
	execPath string
	// tracing is the tracing endpoint handed to child processes.
	tracing string

	mu sync.Mutex
	// engineAddress is the engine's gRPC address (from the command line, or
	// from Handshake when the engine attaches to a running host).
	engineAddress string
}

func newLanguageHost(execPath, engineAddress, tracing string) *languageHost {
	return &languageHost{execPath: execPath, engineAddress: engineAddress, tracing: tracing}
}

func (h *languageHost) engine() string {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.engineAddress
}

// Handshake records the engine address. The engine only calls it when it
// attaches to an already running host; a spawned host gets the address as
// its command-line argument.
func (h *languageHost) Handshake(
	_ context.Context, req *pulumirpc.LanguageHandshakeRequest,
) (*pulumirpc.LanguageHandshakeResponse, error) {
	if addr := req.GetEngineAddress(); addr != "" {
		h.mu.Lock()
		h.engineAddress = addr
		h.mu.Unlock()
	}
	return &pulumirpc.LanguageHandshakeResponse{}, nil
}

// GetPluginInfo reports the version this host was built as.
func (h *languageHost) GetPluginInfo(context.Context, *emptypb.Empty) (*pulumirpc.PluginInfo, error) {
	return &pulumirpc.PluginInfo{Version: version}, nil
}

// About describes the Python interpreter and toolchain a program would use.
func (h *languageHost) About(ctx context.Context, req *pulumirpc.AboutRequest) (*pulumirpc.AboutResponse, error) {
	env, err := newPythonEnv(req.GetInfo(), "")
	if err != nil {
		return nil, err
	}
	about, err := env.tc.About(ctx)
	if err != nil {
		return nil, fmt.Errorf("getting python information: %w", err)
	}
	metadata := map[string]string{"toolchain": env.toolchainName}
	if env.venv != "" {
		metadata["virtualenv"] = env.venv
	}
	if v := about.ToolchainVersion.String(); v != "0.0.0" {
		metadata["toolchainVersion"] = v
	}
	return &pulumirpc.AboutResponse{
		Executable: about.PythonExecutable,
		Version:    about.PythonVersion.String(),
		Metadata:   metadata,
	}, nil
}

// RuntimeOptionsPrompts asks nothing extra during `pulumi new`.
func (h *languageHost) RuntimeOptionsPrompts(
	context.Context, *pulumirpc.RuntimeOptionsRequest,
) (*pulumirpc.RuntimeOptionsResponse, error) {
	return &pulumirpc.RuntimeOptionsResponse{}, nil
}

// Cancel has nothing to do: child processes are tied to the contexts of the
// requests that started them and end with them.
func (h *languageHost) Cancel(context.Context, *emptypb.Empty) (*emptypb.Empty, error) {
	return &emptypb.Empty{}, nil
}
