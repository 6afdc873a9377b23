package awsapi

import (
	"time"

	"github.com/kaginashi/kaginashi/internal/apierr"
	"github.com/kaginashi/kaginashi/internal/store"
)

// kaginashi's own API (signing name "kaginashi", JSON 1.1): join tokens for
// agent enrollment, authorized like everything else (kaginashi:*).

type kgTag struct {
	Key   string `json:"Key"`
	Value string `json:"Value"`
}

type kgToken struct {
	TokenID   string  `json:"TokenId"`
	CreatedBy string  `json:"CreatedBy"`
	CreatedAt string  `json:"CreatedAt"`
	ExpiresAt string  `json:"ExpiresAt"`
	MaxUses   int     `json:"MaxUses"`
	Uses      int     `json:"Uses"`
	Revoked   bool    `json:"Revoked"`
	Tags      []kgTag `json:"Tags"`
}

func kgTokenOf(t store.JoinToken) kgToken {
	out := kgToken{TokenID: t.ID, CreatedBy: t.CreatedBy, CreatedAt: isoTime(t.CreatedAt), ExpiresAt: isoTime(t.ExpiresAt),
		MaxUses: t.MaxUses, Uses: t.Uses, Revoked: t.Revoked, Tags: []kgTag{}}
	for _, tg := range t.Tags {
		out.Tags = append(out.Tags, kgTag{tg.Key, tg.Value})
	}
	return out
}

// JoinTokenARN is arn:aws:kaginashi:REGION:ACCOUNT:join-token/ID.
func (c *call) joinTokenARN(id string) string {
	return "arn:aws:kaginashi:" + c.h.cfg.Region + ":" + c.h.cfg.Account + ":join-token/" + id
}

func kgOps() map[string]*op {
	ops := map[string]*op{}
	add := func(name string, readOnly bool, run func(c *call) (any, error)) {
		ops[name] = &op{name: name, action: "kaginashi:" + name, readOnly: readOnly, run: func(c *call) (any, error) {
			if c.h.deps.Tokens == nil {
				return nil, apierr.New(apierr.Unsupported, "agent enrollment is not enabled on this server")
			}
			return run(c)
		}}
	}
	add("CreateJoinToken", false, func(c *call) (any, error) {
		var in struct {
			TTLSeconds int     `json:"TtlSeconds"`
			MaxUses    int     `json:"MaxUses"`
			Tags       []kgTag `json:"Tags"`
		}
		if err := c.decodeJSON(&in); err != nil {
			return nil, err
		}
		var tags []store.Tag
		for _, t := range in.Tags {
			tags = append(tags, store.Tag{Key: t.Key, Value: t.Value})
		}
		if err := c.authorize("*", requestTags(tags)); err != nil {
			return nil, err
		}
		nt, err := c.h.deps.Tokens.Create(c.ctx, c.auth.Principal.ARN, time.Duration(in.TTLSeconds)*time.Second, in.MaxUses, tags)
		if err != nil {
			return nil, err
		}
		c.response = map[string]any{"tokenId": nt.ID, "expiresAt": isoTime(nt.ExpiresAt), "token": "HIDDEN_DUE_TO_SECURITY_REASONS"}
		return struct {
			Token     string  `json:"Token"`
			JoinToken kgToken `json:"JoinToken"`
		}{nt.Token, kgTokenOf(nt.JoinToken)}, nil
	})
	add("ListJoinTokens", true, func(c *call) (any, error) {
		if err := c.decodeJSON(&struct{}{}); err != nil {
			return nil, err
		}
		if err := c.authorize("*", nil); err != nil {
			return nil, err
		}
		ts, err := c.h.deps.Tokens.List(c.ctx)
		if err != nil {
			return nil, err
		}
		out := struct {
			JoinTokens []kgToken `json:"JoinTokens"`
		}{JoinTokens: []kgToken{}}
		for _, t := range ts {
			out.JoinTokens = append(out.JoinTokens, kgTokenOf(t))
		}
		return out, nil
	})
	add("RevokeJoinToken", false, func(c *call) (any, error) {
		var in struct {
			TokenID string `json:"TokenId"`
		}
		if err := c.decodeJSON(&in); err != nil {
			return nil, err
		}
		if in.TokenID == "" {
			return nil, invalidf("TokenId is required")
		}
		if err := c.authorize(c.joinTokenARN(in.TokenID), nil); err != nil {
			return nil, err
		}
		return struct{}{}, c.h.deps.Tokens.Revoke(c.ctx, in.TokenID)
	})
	return ops
}
