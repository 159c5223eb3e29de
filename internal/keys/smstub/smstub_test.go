package smstub_test

// smstub stands in for AWS Secrets Manager (no emulator is reachable from here). This test drives it
// with the real aws-sdk-go-v2 client, so a protocol detail the SDK relies on that the stand-in gets
// wrong fails here rather than as a confusing key-loading error elsewhere.

import (
	"context"
	"errors"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	sm "github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	smtypes "github.com/aws/aws-sdk-go-v2/service/secretsmanager/types"

	"github.com/sluice-custody/sluice/internal/keys"
	"github.com/sluice-custody/sluice/internal/keys/smstub"
)

func TestProtocolThroughTheSDK(t *testing.T) {
	ctx := context.Background()
	stub := smstub.New()
	ts := stub.Start()
	defer ts.Close()
	a := keys.AWS{Region: "us-east-1", Endpoint: ts.URL, StaticKeyID: "test", StaticSecret: "test"}
	cfg, err := a.Config(ctx)
	if err != nil {
		t.Fatal(err)
	}
	c := sm.NewFromConfig(cfg, func(o *sm.Options) { o.BaseEndpoint = a.BaseEndpoint() })

	cr, err := c.CreateSecret(ctx, &sm.CreateSecretInput{Name: aws.String("w/1"), SecretString: aws.String("v1"),
		Tags: []smtypes.Tag{{Key: aws.String("sluice:address"), Value: aws.String("0xabc")}}})
	if err != nil || aws.ToString(cr.VersionId) == "" || aws.ToString(cr.ARN) == "" {
		t.Fatalf("create: %+v, %v", cr, err)
	}
	if _, err := c.CreateSecret(ctx, &sm.CreateSecretInput{Name: aws.String("w/1"), SecretString: aws.String("x")}); !isCode(err, "ResourceExistsException") {
		t.Fatalf("duplicate create: %v", err)
	}
	if _, err := c.CreateSecret(ctx, &sm.CreateSecretInput{Name: aws.String("bin"), SecretBinary: []byte{0, 1, 2, 255}}); err != nil {
		t.Fatal(err)
	}
	put, err := c.PutSecretValue(ctx, &sm.PutSecretValueInput{SecretId: cr.ARN, SecretString: aws.String("v2")})
	if err != nil {
		t.Fatal(err)
	}
	cur, err := c.GetSecretValue(ctx, &sm.GetSecretValueInput{SecretId: aws.String("w/1")})
	if err != nil || aws.ToString(cur.SecretString) != "v2" || aws.ToString(cur.VersionId) != aws.ToString(put.VersionId) || cur.VersionStages[0] != "AWSCURRENT" {
		t.Fatalf("current: %+v, %v", cur, err)
	}
	prev, err := c.GetSecretValue(ctx, &sm.GetSecretValueInput{SecretId: aws.String("w/1"), VersionStage: aws.String("AWSPREVIOUS")})
	if err != nil || aws.ToString(prev.SecretString) != "v1" {
		t.Fatalf("previous: %+v, %v", prev, err)
	}
	byID, err := c.GetSecretValue(ctx, &sm.GetSecretValueInput{SecretId: aws.String("w/1"), VersionId: cr.VersionId})
	if err != nil || aws.ToString(byID.SecretString) != "v1" {
		t.Fatalf("by version id: %+v, %v", byID, err)
	}
	bin, err := c.GetSecretValue(ctx, &sm.GetSecretValueInput{SecretId: aws.String("bin")})
	if err != nil || string(bin.SecretBinary) != string([]byte{0, 1, 2, 255}) || bin.SecretString != nil {
		t.Fatalf("binary: %+v, %v", bin, err)
	}
	// A third version: the first loses its label, the second becomes AWSPREVIOUS.
	if _, err := c.PutSecretValue(ctx, &sm.PutSecretValueInput{SecretId: aws.String("w/1"), SecretString: aws.String("v3")}); err != nil {
		t.Fatal(err)
	}
	d, err := c.DescribeSecret(ctx, &sm.DescribeSecretInput{SecretId: aws.String("w/1")})
	if err != nil || len(d.VersionIdsToStages) != 2 || d.VersionIdsToStages[aws.ToString(put.VersionId)][0] != "AWSPREVIOUS" || len(d.Tags) != 1 {
		t.Fatalf("describe: %+v, %v", d, err)
	}
	l, err := c.ListSecrets(ctx, &sm.ListSecretsInput{Filters: []smtypes.Filter{{Key: smtypes.FilterNameStringTypeTagKey, Values: []string{"sluice:address"}}}})
	if err != nil || len(l.SecretList) != 1 || aws.ToString(l.SecretList[0].Name) != "w/1" {
		t.Fatalf("list: %+v, %v", l, err)
	}
	if _, err := c.GetSecretValue(ctx, &sm.GetSecretValueInput{SecretId: aws.String("nope")}); !isCode(err, "ResourceNotFoundException") {
		t.Fatalf("missing: %v", err)
	}
	var nf *smtypes.ResourceNotFoundException
	if _, err := c.DescribeSecret(ctx, &sm.DescribeSecretInput{SecretId: aws.String("nope")}); !errors.As(err, &nf) {
		t.Fatalf("missing is not the SDK's typed ResourceNotFoundException: %v", err)
	}
	if stub.Calls("GetSecretValue") != 5 {
		t.Fatalf("GetSecretValue calls %d", stub.Calls("GetSecretValue"))
	}
}

func isCode(err error, code string) bool {
	var ae interface{ ErrorCode() string }
	return errors.As(err, &ae) && ae.ErrorCode() == code
}
