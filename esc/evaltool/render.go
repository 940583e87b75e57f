package main

import (
	"encoding/json"
	"sort"
	"strconv"

	"github.com/hashicorp/hcl/v2"
	"github.com/pulumi/esc"
	"github.com/pulumi/esc/syntax"
)

// redacted replaces secret plaintext unless --reveal is given.
const redacted = "[secret]"

// renderedValue is an esc.Value without its trace: the value (scalars, or
// nested renderedValues for arrays and objects) and its secret/unknown marks.
type renderedValue struct {
	Value   any  `json:"value"`
	Secret  bool `json:"secret,omitempty"`
	Unknown bool `json:"unknown,omitempty"`
}

// renderValue converts v into a renderedValue tree, recording the dotted path
// of every secret into secrets. Secret plaintext is replaced unless reveal.
func renderValue(v esc.Value, path string, reveal bool, secrets *[]string) renderedValue {
	out := renderedValue{Secret: v.Secret, Unknown: v.Unknown}
	if v.Secret && path != "" {
		*secrets = append(*secrets, path)
	}
	switch x := v.Value.(type) {
	case []esc.Value:
		items := make([]renderedValue, len(x))
		for i, item := range x {
			items[i] = renderValue(item, joinPath(path, "["+strconv.Itoa(i)+"]"), reveal, secrets)
		}
		out.Value = items
	case map[string]esc.Value:
		props := make(map[string]renderedValue, len(x))
		for k, item := range x {
			props[k] = renderValue(item, joinPath(path, k), reveal, secrets)
		}
		out.Value = props
	default:
		if v.Secret && !reveal && !v.Unknown {
			out.Value = redacted
		} else {
			out.Value = x
		}
	}
	return out
}

func joinPath(base, elem string) string {
	switch {
	case base == "":
		return elem
	case len(elem) > 0 && elem[0] == '[':
		return base + elem
	default:
		return base + "." + elem
	}
}

// renderedVariable is one entry of the environment's environmentVariables, as
// `esc run` would export it (scalars only, stringified).
type renderedVariable struct {
	Value  string `json:"value"`
	Secret bool   `json:"secret,omitempty"`
}

func renderVariables(env *esc.Environment, reveal bool) map[string]renderedVariable {
	vars := map[string]renderedVariable{}
	if env == nil {
		return vars
	}
	for name, v := range env.GetEnvironmentVariables() {
		value := v.ToString(false)
		if v.Secret && !reveal {
			value = redacted
		}
		vars[name] = renderedVariable{Value: value, Secret: v.Secret}
	}
	return vars
}

// renderedDiagnostic is a diagnostic with its location flattened.
type renderedDiagnostic struct {
	Severity string `json:"severity"`
	Summary  string `json:"summary"`
	Detail   string `json:"detail,omitempty"`
	Path     string `json:"path,omitempty"`
	// Environment is the environment whose document the diagnostic points
	// into (an import's name for problems inside an imported document).
	Environment string `json:"environment,omitempty"`
	File        string `json:"file,omitempty"`
	Line        int    `json:"line,omitempty"`
	Column      int    `json:"column,omitempty"`
	Source      string `json:"source"`
}

// renderDiagnostics flattens diags; fileOf maps an environment name (which
// the evaluator uses as the file name) to the file it was read from.
func renderDiagnostics(diags syntax.Diagnostics, fileOf func(string) string) []renderedDiagnostic {
	out := make([]renderedDiagnostic, 0, len(diags))
	for _, d := range diags {
		rd := renderedDiagnostic{
			Severity: "error",
			Summary:  d.Summary,
			Detail:   d.Detail,
			Path:     d.Path,
			Source:   "esc",
		}
		if d.Severity == hcl.DiagWarning {
			rd.Severity = "warning"
		}
		if d.Subject != nil {
			rd.Environment = d.Subject.Filename
			rd.File = fileOf(d.Subject.Filename)
			rd.Line = d.Subject.Start.Line
			rd.Column = d.Subject.Start.Column
		}
		out = append(out, rd)
	}
	return out
}

// toolDiagnostic reports a problem found by esc-eval's own checks.
func toolDiagnostic(path, summary string) renderedDiagnostic {
	return renderedDiagnostic{Severity: "error", Summary: summary, Path: path, Source: "esc-eval"}
}

// lintEnvironment adds esc-eval's checks on top of the evaluator's: things
// ESC accepts silently but that break consumers.
func lintEnvironment(env *esc.Environment) []renderedDiagnostic {
	var out []renderedDiagnostic
	if env == nil {
		return append(out, toolDiagnostic("values", "environment defines no values and no imports"))
	}
	if vars, ok := env.Properties["environmentVariables"].Value.(map[string]esc.Value); ok {
		names := make([]string, 0, len(vars))
		for name := range vars {
			names = append(names, name)
		}
		sort.Strings(names)
		for _, name := range names {
			switch vars[name].Value.(type) {
			case []esc.Value, map[string]esc.Value:
				out = append(out, toolDiagnostic("values.environmentVariables."+name,
					"environment variable "+name+" is not a scalar; `esc run` and `pulumi` drop it (use fn::join or fn::toJSON)"))
			}
		}
	} else if v, present := env.Properties["environmentVariables"]; present && v.Value != nil {
		out = append(out, toolDiagnostic("values.environmentVariables", "environmentVariables must be an object"))
	}
	if v, present := env.Properties["pulumiConfig"]; present {
		if _, ok := v.Value.(map[string]esc.Value); !ok && v.Value != nil {
			out = append(out, toolDiagnostic("values.pulumiConfig", "pulumiConfig must be an object"))
		}
	}
	return out
}

// marshal renders the report as indented JSON with a trailing newline.
func marshal(report any) ([]byte, error) {
	b, err := json.MarshalIndent(report, "", "  ")
	if err != nil {
		return nil, err
	}
	return append(b, '\n'), nil
}
