package main

import "encoding/json"

// packageSchema returns the Pulumi package schema of this provider: the
// two resources it serves, with the property names and types of the
// pulumi-random SDK. The engine uses it for `pulumi import`, `pulumi
// convert` and policy packs; programs do not need it.
func packageSchema(version string) ([]byte, error) {
	prop := func(typ, description string) map[string]any {
		return map[string]any{"type": typ, "description": description}
	}
	inputs := map[string]any{
		"keepers": map[string]any{
			"type":                 "object",
			"additionalProperties": map[string]any{"type": "string"},
			"description":          "Arbitrary map of values that, when changed, will trigger recreation of the resource.",
		},
		"length":          prop("integer", "The length of the string desired; at least 1 and at least the sum of the minimums."),
		"lower":           prop("boolean", "Include lowercase alphabet characters in the result. Default value is `true`."),
		"upper":           prop("boolean", "Include uppercase alphabet characters in the result. Default value is `true`."),
		"numeric":         prop("boolean", "Include numeric characters in the result. Default value is `true`."),
		"number":          deprecated(prop("boolean", "Include numeric characters in the result. Default value is `true`."), "Use `numeric` instead."),
		"special":         prop("boolean", "Include special characters in the result (`!@#$%&*()-_=+[]{}<>:?`). Default value is `true`."),
		"minLower":        prop("integer", "Minimum number of lowercase alphabet characters in the result. Default value is `0`."),
		"minUpper":        prop("integer", "Minimum number of uppercase alphabet characters in the result. Default value is `0`."),
		"minNumeric":      prop("integer", "Minimum number of numeric characters in the result. Default value is `0`."),
		"minSpecial":      prop("integer", "Minimum number of special characters in the result. Default value is `0`."),
		"overrideSpecial": prop("string", "Supply your own list of special characters to use for string generation."),
	}
	computedInputs := []string{
		"length", "lower", "minLower", "minNumeric", "minSpecial", "minUpper", "number", "numeric", "special", "upper",
	}

	resourceSpec := func(description string, secret bool) map[string]any {
		outputs := map[string]any{}
		for k, v := range inputs {
			outputs[k] = v
		}
		result := prop("string", "The generated random string.")
		required := append([]string{"result"}, computedInputs...)
		if secret {
			result["secret"] = true
			hash := prop("string", "A bcrypt hash of the generated random string (of its first 72 bytes).")
			hash["secret"] = true
			outputs["bcryptHash"] = hash
			required = append(required, "bcryptHash")
		}
		outputs["result"] = result
		return map[string]any{
			"description":     description,
			"inputProperties": inputs,
			"requiredInputs":  []string{"length"},
			"properties":      outputs,
			"required":        required,
		}
	}

	spec := map[string]any{
		"name":        providerName,
		"displayName": "random",
		"version":     version,
		"description": "Random values (passwords, strings) with the semantics of terraform-provider-random v3.",
		"meta":        map[string]any{"moduleFormat": "(.*)(?:/[^/]*)"},
		"provider":    map[string]any{"description": "The provider type for the random package."},
		"resources": map[string]any{
			string(passwordType): resourceSpec(
				"Like RandomString, but the result is a secret. Uses a cryptographic random number generator.", true),
			string(stringType): resourceSpec(
				"A random string of the given length and character classes. Uses a cryptographic random number generator.",
				false),
		},
		"language": map[string]any{
			"python": map[string]any{"requires": map[string]any{"pulumi": ">=3.0.0,<4.0.0"}},
		},
	}
	return json.Marshal(spec)
}

func deprecated(p map[string]any, message string) map[string]any {
	p["deprecationMessage"] = message
	return p
}
