package keys

import (
	"context"
	"errors"
	"fmt"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsconfig "github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials"
)

// AWS says how to reach an AWS service: the region, and an endpoint only for stand-ins (local-kms,
// the Secrets Manager stand-in). Credentials come from the default chain (instance role, env).
type AWS struct {
	Region   string
	Endpoint string
	// StaticKeyID/StaticSecret are for stand-ins that need some credentials; empty in production.
	StaticKeyID, StaticSecret string
}

// Config loads the SDK configuration.
func (a AWS) Config(ctx context.Context) (aws.Config, error) {
	var opts []func(*awsconfig.LoadOptions) error
	if a.Region != "" {
		opts = append(opts, awsconfig.WithRegion(a.Region))
	}
	if a.StaticKeyID != "" {
		opts = append(opts, awsconfig.WithCredentialsProvider(credentials.NewStaticCredentialsProvider(a.StaticKeyID, a.StaticSecret, "")))
	}
	cfg, err := awsconfig.LoadDefaultConfig(ctx, opts...)
	if err != nil {
		return aws.Config{}, fmt.Errorf("keys: aws config: %w", err)
	}
	if cfg.Region == "" {
		return aws.Config{}, errors.New("keys: no AWS region configured")
	}
	return cfg, nil
}

// BaseEndpoint is the endpoint override for a client's options (nil: the service's own).
func (a AWS) BaseEndpoint() *string {
	if a.Endpoint == "" {
		return nil
	}
	return aws.String(a.Endpoint)
}

func (a AWS) String() string {
	return fmt.Sprintf("keys.AWS{region: %s, endpoint: %s}", a.Region, a.Endpoint)
}

// GoString and Format keep %#v and %+v from printing the static secret.
func (a AWS) GoString() string           { return a.String() }
func (a AWS) Format(f fmt.State, _ rune) { _, _ = f.Write([]byte(a.String())) }
