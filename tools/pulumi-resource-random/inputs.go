package main

import (
	"fmt"
	"math"
	"strings"

	"github.com/pulumi/pulumi/sdk/v3/go/common/resource"
	"github.com/pulumi/pulumi/sdk/v3/go/common/resource/plugin"
)

// Property names: the Pulumi (camelCase) names of the Terraform attributes.
const (
	keyKeepers         resource.PropertyKey = "keepers"
	keyLength          resource.PropertyKey = "length"
	keyLower           resource.PropertyKey = "lower"
	keyUpper           resource.PropertyKey = "upper"
	keyNumeric         resource.PropertyKey = "numeric"
	keyNumber          resource.PropertyKey = "number"
	keySpecial         resource.PropertyKey = "special"
	keyMinLower        resource.PropertyKey = "minLower"
	keyMinUpper        resource.PropertyKey = "minUpper"
	keyMinNumeric      resource.PropertyKey = "minNumeric"
	keyMinSpecial      resource.PropertyKey = "minSpecial"
	keyOverrideSpecial resource.PropertyKey = "overrideSpecial"

	keyResult     resource.PropertyKey = "result"
	keyBcryptHash resource.PropertyKey = "bcryptHash"
)

// inputKeys are the inputs of RandomPassword and RandomString, in a stable order.
var inputKeys = []resource.PropertyKey{
	keyKeepers, keyLength, keyLower, keyMinLower, keyMinNumeric, keyMinSpecial, keyMinUpper,
	keyNumber, keyNumeric, keyOverrideSpecial, keySpecial, keyUpper,
}

var (
	// boolDefaults are the booleans that default to true.
	boolDefaults = []resource.PropertyKey{keyLower, keyUpper, keySpecial}
	// minKeys are the per-class minimums, which default to 0.
	minKeys = []resource.PropertyKey{keyMinLower, keyMinUpper, keyMinNumeric, keyMinSpecial}
)

func isInput(k resource.PropertyKey) bool {
	for _, in := range inputKeys {
		if in == k {
			return true
		}
	}
	return false
}

// checkInputs validates the inputs of a RandomPassword or RandomString and
// fills in the defaults of terraform-provider-random: upper, lower, special
// and numeric true, minimums 0, number and numeric kept equal. Unknown
// values (in previews) are kept and validated later.
func checkInputs(news resource.PropertyMap) (resource.PropertyMap, []plugin.CheckFailure) {
	var failures []plugin.CheckFailure
	fail := func(k resource.PropertyKey, format string, args ...any) {
		failures = append(failures, plugin.CheckFailure{Property: k, Reason: fmt.Sprintf(format, args...)})
	}

	out := resource.PropertyMap{}
	for k, v := range news {
		switch {
		case strings.HasPrefix(string(k), "__"):
			// Engine/bridge bookkeeping such as __defaults: not an input.
		case !isInput(k):
			fail(k, "unknown property %q", k)
		case !v.IsNull():
			out[k] = v
		}
	}

	if v, ok := out[keyLength]; !ok {
		fail(keyLength, "Missing required property 'length'")
	} else if n, known, err := intValue(v); err != nil {
		fail(keyLength, "length: %v", err)
	} else if known && n < 1 {
		fail(keyLength, "length must be at least 1, got %d", n)
	}

	for _, k := range boolDefaults {
		if v, ok := out[k]; !ok {
			out[k] = resource.NewProperty(true)
		} else if _, _, err := boolValue(v); err != nil {
			fail(k, "%s: %v", k, err)
		}
	}

	// number is the deprecated name of numeric; either may be set, and when
	// both are they must agree.
	number, hasNumber := out[keyNumber]
	numeric, hasNumeric := out[keyNumeric]
	nb, nbKnown, errNumber := boolValue(number)
	nc, ncKnown, errNumeric := boolValue(numeric)
	switch {
	case hasNumber && errNumber != nil:
		fail(keyNumber, "number: %v", errNumber)
	case hasNumeric && errNumeric != nil:
		fail(keyNumeric, "numeric: %v", errNumeric)
	case hasNumber && hasNumeric:
		if nbKnown && ncKnown && nb != nc {
			fail(keyNumeric, "number and numeric are both set, with different values (number is deprecated, use numeric)")
		}
	case hasNumber:
		out[keyNumeric] = number
	case hasNumeric:
		out[keyNumber] = numeric
	default:
		out[keyNumber] = resource.NewProperty(true)
		out[keyNumeric] = resource.NewProperty(true)
	}

	sum, sumKnown := int64(0), true
	for _, k := range minKeys {
		v, ok := out[k]
		if !ok {
			out[k] = resource.NewProperty(0.0)
			continue
		}
		n, known, err := intValue(v)
		switch {
		case err != nil:
			fail(k, "%s: %v", k, err)
		case !known:
			sumKnown = false
		case n < 0:
			fail(k, "%s must not be negative, got %d", k, n)
		default:
			sum += n
		}
	}
	if length, known, err := intValue(out[keyLength]); err == nil && known && sumKnown && length < sum {
		fail(keyLength, "length (%d) must be at least the sum of minUpper, minLower, minNumeric and minSpecial (%d)",
			length, sum)
	}

	if v, ok := out[keyOverrideSpecial]; ok {
		if p, known := unwrap(v); known && !p.IsString() {
			fail(keyOverrideSpecial, "overrideSpecial must be a string")
		}
	}

	if v, ok := out[keyKeepers]; ok {
		if p, known := unwrap(v); known {
			if !p.IsObject() {
				fail(keyKeepers, "keepers must be a map of strings")
			} else {
				for mk, mv := range p.ObjectValue() {
					if e, known := unwrap(mv); known && !e.IsNull() && !e.IsString() {
						fail(keyKeepers, "keepers[%q] must be a string", mk)
					}
				}
			}
		}
	}

	return out, failures
}

// paramsFromInputs returns the generation parameters of checked, fully
// known inputs.
func paramsFromInputs(in resource.PropertyMap) (stringParams, error) {
	var p stringParams
	var err error
	ints := []struct {
		key resource.PropertyKey
		dst *int64
	}{
		{keyLength, &p.Length}, {keyMinUpper, &p.MinUpper}, {keyMinLower, &p.MinLower},
		{keyMinNumeric, &p.MinNumeric}, {keyMinSpecial, &p.MinSpecial},
	}
	for _, f := range ints {
		var known bool
		if *f.dst, known, err = intValue(in[f.key]); err != nil || !known {
			return p, fmt.Errorf("%s is not a known integer", f.key)
		}
	}
	bools := []struct {
		key resource.PropertyKey
		dst *bool
	}{
		{keyUpper, &p.Upper}, {keyLower, &p.Lower}, {keyNumeric, &p.Numeric}, {keySpecial, &p.Special},
	}
	for _, f := range bools {
		var known bool
		if *f.dst, known, err = boolValue(in[f.key]); err != nil || !known {
			return p, fmt.Errorf("%s is not a known boolean", f.key)
		}
	}
	if v, ok := in[keyOverrideSpecial]; ok {
		s, known := unwrap(v)
		if !known || !s.IsString() {
			return p, fmt.Errorf("%s is not a known string", keyOverrideSpecial)
		}
		p.OverrideSpecial = s.StringValue()
	}
	return p, nil
}

// unwrap strips secret and known-output wrappers from v. It reports false
// when the value is not known (yet).
func unwrap(v resource.PropertyValue) (resource.PropertyValue, bool) {
	for {
		switch {
		case v.IsSecret():
			v = v.SecretValue().Element
		case v.IsOutput():
			o := v.OutputValue()
			if !o.Known {
				return v, false
			}
			v = o.Element
		case v.IsComputed():
			return v, false
		default:
			return v, true
		}
	}
}

// intValue reads an integer. known is false for unknown values.
func intValue(v resource.PropertyValue) (n int64, known bool, err error) {
	p, known := unwrap(v)
	if !known {
		return 0, false, nil
	}
	if !p.IsNumber() {
		return 0, true, fmt.Errorf("expected an integer, got %s", p.TypeString())
	}
	f := p.NumberValue()
	if f != math.Trunc(f) || math.Abs(f) > 1<<53 {
		return 0, true, fmt.Errorf("expected an integer, got %v", f)
	}
	return int64(f), true, nil
}

// boolValue reads a boolean. known is false for unknown values.
func boolValue(v resource.PropertyValue) (b bool, known bool, err error) {
	p, known := unwrap(v)
	if !known {
		return false, false, nil
	}
	if !p.IsBool() {
		return false, true, fmt.Errorf("expected a boolean, got %s", p.TypeString())
	}
	return p.BoolValue(), true, nil
}
