package main

import (
	"context"
	"fmt"

	"github.com/blang/semver"
	"github.com/pulumi/pulumi/sdk/v3/go/common/resource"
	"github.com/pulumi/pulumi/sdk/v3/go/common/resource/plugin"
	"github.com/pulumi/pulumi/sdk/v3/go/common/tokens"
)

const providerName = "random"

// Resource types served, as the pulumi-random SDKs name them.
const (
	passwordType tokens.Type = "random:index/randomPassword:RandomPassword"
	stringType   tokens.Type = "random:index/randomString:RandomString"
)

// staticID is the ID terraform-provider-random gives every random_password.
const staticID resource.ID = "none"

// randomProvider implements plugin.Provider; plugin.NewProviderServer turns
// it into the gRPC ResourceProvider service (marshalling, secrets, unknowns).
// The provider has no configuration.
type randomProvider struct {
	plugin.UnimplementedProvider
	version string
}

func newRandomProvider(version string) *randomProvider {
	return &randomProvider{version: version}
}

func (p *randomProvider) Handshake(
	context.Context, plugin.ProviderHandshakeRequest,
) (*plugin.ProviderHandshakeResponse, error) {
	return &plugin.ProviderHandshakeResponse{AcceptSecrets: true, AcceptOutputs: true}, nil
}

func (p *randomProvider) GetPluginInfo(context.Context) (plugin.PluginInfo, error) {
	v, err := semver.ParseTolerant(p.version)
	if err != nil {
		return plugin.PluginInfo{}, fmt.Errorf("invalid provider version %q: %w", p.version, err)
	}
	return plugin.PluginInfo{Version: &v}, nil
}

func (p *randomProvider) GetSchema(context.Context, plugin.GetSchemaRequest) (plugin.GetSchemaResponse, error) {
	s, err := packageSchema(p.version)
	if err != nil {
		return plugin.GetSchemaResponse{}, err
	}
	return plugin.GetSchemaResponse{Schema: s}, nil
}

func (p *randomProvider) CheckConfig(
	_ context.Context, req plugin.CheckConfigRequest,
) (plugin.CheckConfigResponse, error) {
	return plugin.CheckConfigResponse{Properties: req.News}, nil
}

func (p *randomProvider) DiffConfig(context.Context, plugin.DiffConfigRequest) (plugin.DiffConfigResponse, error) {
	return plugin.DiffResult{Changes: plugin.DiffNone}, nil
}

func (p *randomProvider) Configure(context.Context, plugin.ConfigureRequest) (plugin.ConfigureResponse, error) {
	return plugin.ConfigureResponse{}, nil
}

func (p *randomProvider) SignalCancellation(context.Context) error { return nil }

func (p *randomProvider) Close() error { return nil }

func (p *randomProvider) GetMapping(context.Context, plugin.GetMappingRequest) (plugin.GetMappingResponse, error) {
	return plugin.GetMappingResponse{}, nil
}

func (p *randomProvider) GetMappings(context.Context, plugin.GetMappingsRequest) (plugin.GetMappingsResponse, error) {
	return plugin.GetMappingsResponse{}, nil
}

func checkType(t tokens.Type) error {
	if t != passwordType && t != stringType {
		return fmt.Errorf("unknown resource type %q", t)
	}
	return nil
}

// Check validates the inputs and fills in their defaults.
func (p *randomProvider) Check(_ context.Context, req plugin.CheckRequest) (plugin.CheckResponse, error) {
	if err := checkType(req.Type); err != nil {
		return plugin.CheckResponse{}, err
	}
	props, failures := checkInputs(req.News)
	return plugin.CheckResponse{Properties: props, Failures: failures}, nil
}

// Diff reports every changed input as requiring replacement: a random value
// is only ever regenerated, never updated.
func (p *randomProvider) Diff(_ context.Context, req plugin.DiffRequest) (plugin.DiffResponse, error) {
	if err := checkType(req.Type); err != nil {
		return plugin.DiffResult{}, err
	}
	olds := req.OldInputs
	if len(olds) == 0 {
		// States written without inputs: take the input keys of the outputs.
		olds = resource.PropertyMap{}
		for _, k := range inputKeys {
			if v, ok := req.OldOutputs[k]; ok {
				olds[k] = v
			}
		}
	}
	olds, _ = checkInputs(olds) // same defaults on both sides
	return diffInputs(olds, req.NewInputs, req.IgnoreChanges), nil
}

// Create generates the value. In a preview the outputs are unknown.
func (p *randomProvider) Create(_ context.Context, req plugin.CreateRequest) (plugin.CreateResponse, error) {
	if err := checkType(req.Type); err != nil {
		return plugin.CreateResponse{}, err
	}
	outputs := req.Properties.Copy()
	if req.Preview {
		unknown := resource.MakeComputed(resource.NewProperty(""))
		outputs[keyResult] = unknown
		if req.Type == passwordType {
			outputs[keyBcryptHash] = unknown
		}
		return plugin.CreateResponse{Properties: outputs, Status: resource.StatusOK}, nil
	}

	params, err := paramsFromInputs(req.Properties)
	if err != nil {
		return plugin.CreateResponse{}, err
	}
	value, err := generateString(params)
	if err != nil {
		return plugin.CreateResponse{}, err
	}
	id, err := setResult(req.Type, outputs, value)
	if err != nil {
		return plugin.CreateResponse{}, err
	}
	return plugin.CreateResponse{ID: id, Properties: outputs, Status: resource.StatusOK}, nil
}

// setResult stores value (and for passwords its bcrypt hash, both secret)
// in outputs and returns the resource ID.
func setResult(t tokens.Type, outputs resource.PropertyMap, value string) (resource.ID, error) {
	if t != passwordType {
		// random_string's ID is its value.
		outputs[keyResult] = resource.NewProperty(value)
		return resource.ID(value), nil
	}
	hash, err := bcryptHash(value)
	if err != nil {
		return "", err
	}
	outputs[keyResult] = resource.MakeSecret(resource.NewProperty(value))
	outputs[keyBcryptHash] = resource.MakeSecret(resource.NewProperty(hash))
	return staticID, nil
}

// Read returns the state unchanged (nothing exists outside of it), except
// for an import (`pulumi import ... <value>`), whose ID is the value.
func (p *randomProvider) Read(_ context.Context, req plugin.ReadRequest) (plugin.ReadResponse, error) {
	if err := checkType(req.Type); err != nil {
		return plugin.ReadResponse{}, err
	}
	if len(req.State) > 0 {
		return plugin.ReadResponse{
			ReadResult: plugin.ReadResult{ID: req.ID, Inputs: req.Inputs, Outputs: req.State},
			Status:     resource.StatusOK,
		}, nil
	}

	value := string(req.ID)
	if value == "" {
		return plugin.ReadResponse{}, fmt.Errorf("importing a %s needs its value as the ID", req.Type)
	}
	inputs, _ := checkInputs(resource.PropertyMap{keyLength: resource.NewProperty(float64(len(value)))})
	outputs := inputs.Copy()
	id, err := setResult(req.Type, outputs, value)
	if err != nil {
		return plugin.ReadResponse{}, err
	}
	return plugin.ReadResponse{
		ReadResult: plugin.ReadResult{ID: id, Inputs: inputs, Outputs: outputs},
		Status:     resource.StatusOK,
	}, nil
}

// Update only happens for changes Diff did not report (ignored ones): the
// new inputs are recorded and the generated value is kept.
func (p *randomProvider) Update(_ context.Context, req plugin.UpdateRequest) (plugin.UpdateResponse, error) {
	if err := checkType(req.Type); err != nil {
		return plugin.UpdateResponse{}, err
	}
	outputs := req.NewInputs.Copy()
	for _, k := range []resource.PropertyKey{keyResult, keyBcryptHash} {
		if v, ok := req.OldOutputs[k]; ok {
			outputs[k] = v
		}
	}
	return plugin.UpdateResponse{Properties: outputs, Status: resource.StatusOK}, nil
}

// Delete has nothing to remove.
func (p *randomProvider) Delete(_ context.Context, req plugin.DeleteRequest) (plugin.DeleteResponse, error) {
	if err := checkType(req.Type); err != nil {
		return plugin.DeleteResponse{}, err
	}
	return plugin.DeleteResponse{Status: resource.StatusOK}, nil
}
