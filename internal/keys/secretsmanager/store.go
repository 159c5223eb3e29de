package secretsmanager

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strconv"

	"github.com/aws/aws-sdk-go-v2/aws"
	sm "github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	smtypes "github.com/aws/aws-sdk-go-v2/service/secretsmanager/types"
	"github.com/ethereum/go-ethereum/common"

	"github.com/sluice-custody/sluice/internal/keys"
)

// Tags every wallet secret carries, so that listing needs no secret value.
const (
	TagAddress = "sluice:address"
	TagChainID = "sluice:chain_id"
	TagFormat  = "sluice:key_format"
)

// Create seals key for chainID under a new data key and stores it as the new secret secretID. It
// returns the secret's version id.
func Create(ctx context.Context, api API, m MasterKey, secretID string, chainID uint64, key *keys.SecretKey) (string, error) {
	value, err := sealJSON(ctx, key, chainID, m)
	if err != nil {
		return "", err
	}
	out, err := api.CreateSecret(ctx, &sm.CreateSecretInput{
		Name:         aws.String(secretID),
		SecretString: aws.String(value),
		Description:  aws.String(fmt.Sprintf("sluice wallet key %s on chain %d (doubly encrypted)", key.Address().Hex(), chainID)),
		Tags: []smtypes.Tag{
			{Key: aws.String(TagAddress), Value: aws.String(key.Address().Hex())},
			{Key: aws.String(TagChainID), Value: aws.String(strconv.FormatUint(chainID, 10))},
			{Key: aws.String(TagFormat), Value: aws.String(strconv.Itoa(Format))},
		},
	})
	if err != nil {
		return "", fmt.Errorf("secretsmanager: create %s: %w", secretID, keys.SafeCause("CreateSecret", err))
	}
	return aws.ToString(out.VersionId), nil
}

// Reseal stores key again under a fresh data key as a new version of secretID (AWSCURRENT moves to
// it, the old version becomes AWSPREVIOUS): after a master-key rotation, or to rotate the data key.
func Reseal(ctx context.Context, api API, m MasterKey, secretID string, chainID uint64, key *keys.SecretKey) (string, error) {
	value, err := sealJSON(ctx, key, chainID, m)
	if err != nil {
		return "", err
	}
	out, err := api.PutSecretValue(ctx, &sm.PutSecretValueInput{SecretId: aws.String(secretID), SecretString: aws.String(value)})
	if err != nil {
		return "", fmt.Errorf("secretsmanager: put %s: %w", secretID, keys.SafeCause("PutSecretValue", err))
	}
	return aws.ToString(out.VersionId), nil
}

func sealJSON(ctx context.Context, key *keys.SecretKey, chainID uint64, m MasterKey) (string, error) {
	env, err := Seal(ctx, key, chainID, m)
	if err != nil {
		return "", err
	}
	b, err := json.Marshal(env)
	if err != nil {
		return "", fmt.Errorf("secretsmanager: encode envelope: %w", err)
	}
	return string(b), nil
}

// Entry is one wallet secret as listed: no value is fetched.
type Entry struct {
	SecretID string
	Address  common.Address
	ChainID  uint64
	Format   string
	// Versions maps version ids to their stages (AWSCURRENT, AWSPREVIOUS).
	Versions map[string][]string
}

// List returns every secret tagged as a sluice wallet key, sorted by name.
func List(ctx context.Context, api API) ([]Entry, error) {
	var out []Entry
	var token *string
	for {
		page, err := api.ListSecrets(ctx, &sm.ListSecretsInput{NextToken: token,
			Filters: []smtypes.Filter{{Key: smtypes.FilterNameStringTypeTagKey, Values: []string{TagAddress}}}})
		if err != nil {
			return nil, fmt.Errorf("secretsmanager: list: %w", keys.SafeCause("ListSecrets", err))
		}
		for _, s := range page.SecretList {
			e := Entry{SecretID: aws.ToString(s.Name), Versions: s.SecretVersionsToStages}
			for _, t := range s.Tags {
				switch aws.ToString(t.Key) {
				case TagAddress:
					e.Address = common.HexToAddress(aws.ToString(t.Value))
				case TagChainID:
					e.ChainID, _ = strconv.ParseUint(aws.ToString(t.Value), 10, 64)
				case TagFormat:
					e.Format = aws.ToString(t.Value)
				}
			}
			if e.Address != (common.Address{}) {
				out = append(out, e)
			}
		}
		if page.NextToken == nil || *page.NextToken == "" {
			break
		}
		token = page.NextToken
	}
	slices.SortFunc(out, func(a, b Entry) int {
		if a.SecretID < b.SecretID {
			return -1
		}
		if a.SecretID > b.SecretID {
			return 1
		}
		return 0
	})
	return out, nil
}

// Verify loads w's key, checks it opens and matches its address, and wipes it at once.
func Verify(ctx context.Context, api API, m MasterKey, w Wallet) error {
	k, err := Load(ctx, api, m, w)
	if err != nil {
		return err
	}
	k.Destroy()
	return nil
}
