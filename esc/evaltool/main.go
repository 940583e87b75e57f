// Command esc-eval evaluates Pulumi ESC environment documents offline, with
// the same evaluator the ESC service uses (github.com/pulumi/esc/eval), and
// prints a JSON report.
//
// Usage:
//
//	esc-eval [--reveal] [--import NAME=FILE]... NAME=FILE|FILE...
//
// Every positional environment is evaluated and may also be imported by the
// others under NAME (a bare FILE is named after its base name without the
// extension); --import environments are only available to `imports:`.
// Providers (fn::open) are unavailable and secrets given as ciphertext must
// have been made with esc-eval's public fake key.
//
// For each evaluated environment the report holds its values (each value as
// {"value": ..., "secret": true?, "unknown": true?}), the environment
// variables `esc run` would export, pulumiConfig, the paths of all secret
// values and the diagnostics. Secret plaintext is printed as "[secret]"
// unless --reveal is given.
//
// Exit status: 0 when no environment has a diagnostic, 1 when any has one,
// 2 on usage or I/O errors.
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"sort"

	"github.com/pulumi/esc"
	"github.com/pulumi/esc/eval"
)

// environmentReport is the JSON report for one evaluated environment.
type environmentReport struct {
	Name                 string                      `json:"name"`
	File                 string                      `json:"file"`
	Values               map[string]renderedValue    `json:"values"`
	EnvironmentVariables map[string]renderedVariable `json:"environmentVariables"`
	PulumiConfig         map[string]renderedValue    `json:"pulumiConfig"`
	SecretPaths          []string                    `json:"secretPaths"`
	Diagnostics          []renderedDiagnostic        `json:"diagnostics"`
}

// report is the whole JSON document esc-eval prints.
type report struct {
	OK           bool                `json:"ok"`
	Revealed     bool                `json:"revealed"`
	Environments []environmentReport `json:"environments"`
}

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

// run is main without the process: it returns the exit status.
func run(args []string, stdout, stderr io.Writer) int {
	envs := newFileEnvironments()
	flags := flag.NewFlagSet("esc-eval", flag.ContinueOnError)
	flags.SetOutput(stderr)
	reveal := flags.Bool("reveal", false, "print secret plaintext instead of \"[secret]\"")
	flags.Func("import", "NAME=FILE of an environment available to `imports:` only (repeatable)", func(spec string) error {
		_, err := envs.add(spec)
		return err
	})
	flags.Usage = func() {
		fmt.Fprintln(stderr, "usage: esc-eval [--reveal] [--import NAME=FILE]... NAME=FILE|FILE...")
		flags.PrintDefaults()
	}
	if err := flags.Parse(args); err != nil {
		return 2
	}
	if flags.NArg() == 0 {
		flags.Usage()
		return 2
	}

	var roots []string
	for _, spec := range flags.Args() {
		name, err := envs.add(spec)
		if err != nil {
			fmt.Fprintln(stderr, "esc-eval:", err)
			return 2
		}
		roots = append(roots, name)
	}

	out := report{OK: true, Revealed: *reveal}
	for _, name := range roots {
		r, err := evaluate(context.Background(), envs, name, *reveal)
		if err != nil {
			fmt.Fprintln(stderr, "esc-eval:", err)
			return 2
		}
		if len(r.Diagnostics) > 0 {
			out.OK = false
		}
		out.Environments = append(out.Environments, r)
	}

	b, err := marshal(out)
	if err != nil {
		fmt.Fprintln(stderr, "esc-eval:", err)
		return 2
	}
	if _, err := stdout.Write(b); err != nil {
		return 2
	}
	if !out.OK {
		return 1
	}
	return 0
}

// evaluate loads and evaluates one environment. Problems with the document
// are diagnostics in the report; only I/O failures are errors.
func evaluate(ctx context.Context, envs *fileEnvironments, name string, reveal bool) (environmentReport, error) {
	file := envs.files[name]
	r := environmentReport{
		Name:                 name,
		File:                 file,
		Values:               map[string]renderedValue{},
		EnvironmentVariables: map[string]renderedVariable{},
		PulumiConfig:         map[string]renderedValue{},
		SecretPaths:          []string{},
		Diagnostics:          []renderedDiagnostic{},
	}
	source, err := os.ReadFile(file)
	if err != nil {
		return r, err
	}

	decl, diags, err := eval.LoadYAMLBytes(name, source)
	if err != nil {
		return r, fmt.Errorf("%s: %w", file, err)
	}
	r.Diagnostics = append(r.Diagnostics, renderDiagnostics(diags, envs.fileOf)...)
	if diags.HasErrors() || decl == nil {
		return r, nil
	}

	execContext, err := esc.NewExecContext(map[string]esc.Value{})
	if err != nil {
		return r, err
	}
	env, evalDiags := eval.EvalEnvironment(ctx, name, decl, fakeKey{}, noProviders{}, envs, execContext)
	r.Diagnostics = append(r.Diagnostics, renderDiagnostics(evalDiags, envs.fileOf)...)
	r.Diagnostics = append(r.Diagnostics, lintEnvironment(env)...)
	if env == nil {
		return r, nil
	}

	for key, v := range env.Properties {
		r.Values[key] = renderValue(v, key, reveal, &r.SecretPaths)
	}
	sort.Strings(r.SecretPaths)
	if cfg, ok := env.Properties["pulumiConfig"].Value.(map[string]esc.Value); ok {
		var ignored []string
		for key, v := range cfg {
			r.PulumiConfig[key] = renderValue(v, key, reveal, &ignored)
		}
	}
	r.EnvironmentVariables = renderVariables(env, reveal)
	return r, nil
}
