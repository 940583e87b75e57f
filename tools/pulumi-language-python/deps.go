package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"regexp"
	"strings"

	"github.com/pulumi/pulumi/sdk/v3/go/common/resource/plugin"
	"github.com/pulumi/pulumi/sdk/v3/go/common/util/logging"
	pulumirpc "github.com/pulumi/pulumi/sdk/v3/proto/go"
)

// listPulumiPackagesScript prints, as JSON, every installed distribution
// whose name starts with "pulumi-", with the content of the
// pulumi-plugin.json file of its module (<name with _>/pulumi-plugin.json),
// if it has one. One interpreter start instead of one `pip show` per package.
const listPulumiPackagesScript = `
import importlib.metadata as md, json, re, sys
seen, out = set(), []
for dist in md.distributions():
    name = re.sub(r"[-_.]+", "-", (dist.metadata["Name"] or "")).lower()
    if not name.startswith("pulumi-") or name in seen:
        continue
    seen.add(name)
    plugin = None
    module = name.replace("-", "_")
    for fname in ("pulumi-plugin.json", "pulumiplugin.json"):
        path = dist.locate_file(module + "/" + fname)
        try:
            with open(path, encoding="utf-8") as f:
                plugin = f.read()
            break
        except OSError:
            pass
    out.append({"name": name, "version": dist.version, "plugin": plugin})
json.dump(out, sys.stdout)
`

// packagesWithoutPlugins are pulumi-* packages known to have no resource
// plugin even when they ship no pulumi-plugin.json saying so.
var packagesWithoutPlugins = map[string]bool{"pulumi-policy": true}

// releaseVersion matches package versions that are also plugin versions.
// Pre-releases ("3.31.0a1605189729") cannot be mapped back to a plugin
// version and are skipped, as upstream does.
var releaseVersion = regexp.MustCompile(`^\d+\.\d+\.\d+$`)

// installedPackage is one line of listPulumiPackagesScript's output.
type installedPackage struct {
	Name    string  `json:"name"`
	Version string  `json:"version"`
	Plugin  *string `json:"plugin"`
}

// GetRequiredPackages reports the resource plugins (and parameterized
// packages) needed by the pulumi-* packages installed for the program.
func (h *languageHost) GetRequiredPackages(
	ctx context.Context, req *pulumirpc.GetRequiredPackagesRequest,
) (*pulumirpc.GetRequiredPackagesResponse, error) {
	deps, err := h.requiredPackages(ctx, req.GetInfo())
	if err != nil {
		return nil, err
	}
	return &pulumirpc.GetRequiredPackagesResponse{Packages: deps}, nil
}

// GetRequiredPlugins is the deprecated form of GetRequiredPackages; it
// leaves out parameterized packages, which it cannot express.
func (h *languageHost) GetRequiredPlugins(
	ctx context.Context, req *pulumirpc.GetRequiredPluginsRequest,
) (*pulumirpc.GetRequiredPluginsResponse, error) {
	info := req.GetInfo()
	if info == nil {
		info = &pulumirpc.ProgramInfo{RootDirectory: req.GetPwd(), ProgramDirectory: req.GetPwd()}
	}
	deps, err := h.requiredPackages(ctx, info)
	if err != nil {
		return nil, err
	}
	var plugins []*pulumirpc.PluginDependency
	for _, d := range deps {
		if d.Parameterization != nil {
			continue
		}
		plugins = append(plugins, &pulumirpc.PluginDependency{
			Name: d.Name, Kind: d.Kind, Version: d.Version, Server: d.Server,
		})
	}
	return &pulumirpc.GetRequiredPluginsResponse{Plugins: plugins}, nil
}

func (h *languageHost) requiredPackages(
	ctx context.Context, info *pulumirpc.ProgramInfo,
) ([]*pulumirpc.PackageDependency, error) {
	env, err := newPythonEnv(info, "")
	if err != nil {
		return nil, err
	}
	if err := env.tc.EnsureVenv(ctx, env.root, false, true, os.Stdout, os.Stderr); err != nil {
		return nil, err
	}
	if err := env.tc.ValidateVenv(ctx); err != nil {
		return nil, err
	}
	pkgs, err := listPulumiPackages(ctx, env)
	if err != nil {
		return nil, err
	}
	var deps []*pulumirpc.PackageDependency
	for _, pkg := range pkgs {
		dep, err := packageDependency(pkg)
		if err != nil {
			return nil, err
		}
		if dep != nil {
			logging.V(5).Infof("GetRequiredPackages: %s %s needs %s %s", pkg.Name, pkg.Version, dep.Name, dep.Version)
			deps = append(deps, dep)
		}
	}
	return deps, nil
}

// listPulumiPackages runs listPulumiPackagesScript with the program's python.
func listPulumiPackages(ctx context.Context, env *pythonEnv) ([]installedPackage, error) {
	cmd, err := env.tc.Command(ctx, "-c", listPulumiPackagesScript)
	if err != nil {
		return nil, err
	}
	cmd.Dir = env.root
	cmd.Env = env.activate(ctx, os.Environ())
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return nil, fmt.Errorf("listing installed Python packages: %w: %s", err, strings.TrimSpace(stderr.String()))
	}
	var pkgs []installedPackage
	if err := json.Unmarshal(out, &pkgs); err != nil {
		return nil, fmt.Errorf("parsing the list of installed Python packages: %w", err)
	}
	return pkgs, nil
}

// packageDependency maps an installed package to the plugin it needs, or nil
// when it needs none. pulumi-plugin.json decides when present; otherwise the
// plugin is named after the package (minus "pulumi-") and shares its version.
func packageDependency(pkg installedPackage) (*pulumirpc.PackageDependency, error) {
	var name, version, server string
	var meta plugin.PulumiPluginJSON
	if pkg.Plugin != nil {
		if err := json.Unmarshal([]byte(*pkg.Plugin), &meta); err != nil {
			return nil, fmt.Errorf("parsing pulumi-plugin.json of %s: %w", pkg.Name, err)
		}
		if !meta.Resource {
			return nil, nil
		}
		name, version, server = meta.Name, meta.Version, meta.Server
	} else if packagesWithoutPlugins[pkg.Name] {
		return nil, nil
	}

	if name == "" {
		name = strings.TrimPrefix(pkg.Name, "pulumi-")
	}
	if version == "" {
		if !releaseVersion.MatchString(pkg.Version) {
			logging.V(5).Infof("GetRequiredPackages: no plugin version for %s %s", pkg.Name, pkg.Version)
			return nil, nil
		}
		version = pkg.Version
	}
	if !strings.HasPrefix(version, "v") {
		version = "v" + version
	}

	dep := &pulumirpc.PackageDependency{Kind: "resource", Name: name, Version: version, Server: server}
	if p := meta.Parameterization; p != nil {
		dep.Parameterization = &pulumirpc.PackageParameterization{Name: p.Name, Version: p.Version, Value: p.Value}
	}
	if p := meta.ExtensionParameterization; p != nil {
		dep.Extension = &pulumirpc.PackageParameterization{Name: p.Name, Version: p.Version, Value: p.Value}
	}
	return dep, nil
}

// GetProgramDependencies lists the Python packages installed for the program.
func (h *languageHost) GetProgramDependencies(
	ctx context.Context, req *pulumirpc.GetProgramDependenciesRequest,
) (*pulumirpc.GetProgramDependenciesResponse, error) {
	env, err := newPythonEnv(req.GetInfo(), req.GetPwd())
	if err != nil {
		return nil, err
	}
	if err := env.tc.ValidateVenv(ctx); err != nil {
		return nil, err
	}
	pkgs, err := env.tc.ListPackages(ctx, req.GetTransitiveDependencies())
	if err != nil {
		return nil, err
	}
	deps := make([]*pulumirpc.DependencyInfo, 0, len(pkgs))
	for _, p := range pkgs {
		deps = append(deps, &pulumirpc.DependencyInfo{Name: p.Name, Version: p.Version})
	}
	return &pulumirpc.GetProgramDependenciesResponse{Dependencies: deps}, nil
}

// InstallDependencies creates the virtual environment (if one is configured)
// and installs the project's requirements into it, streaming pip's output.
func (h *languageHost) InstallDependencies(
	req *pulumirpc.InstallDependenciesRequest,
	stream pulumirpc.LanguageRuntime_InstallDependenciesServer,
) error {
	ctx := stream.Context()
	env, err := newPythonEnv(req.GetInfo(), req.GetDirectory())
	if err != nil {
		return err
	}
	out := newStreamWriters(func(stdout, stderr []byte) error {
		return stream.Send(&pulumirpc.InstallDependenciesResponse{Stdout: stdout, Stderr: stderr})
	})
	dir := req.GetDirectory()
	if dir == "" {
		dir = env.root
	}
	if err := env.tc.InstallDependencies(ctx, dir, req.GetUseLanguageVersionTools(), true, /*showOutput*/
		out.stdout, out.stderr); err != nil {
		return err
	}
	return env.tc.ValidateVenv(ctx)
}
