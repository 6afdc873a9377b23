package benchpolicy

import (
	"fmt"

	"github.com/kaginashi/kaginashi/policy"
)

// KaginashiSet parses, compiles and indexes the documents.
func KaginashiSet(docs []Doc) (*policy.Set, error) {
	var cs []*policy.Compiled
	for _, d := range docs {
		c, err := policy.ParseAndCompile(d.Name, d.JSON)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", d.Name, err)
		}
		cs = append(cs, c)
	}
	return policy.NewSet(cs...), nil
}

// KaginashiRequest builds kaginashi's request.
func KaginashiRequest(r Request) *policy.Request {
	ctx := policy.NewContext()
	for k, v := range r.Context {
		ctx.Set(k, v...)
	}
	return &policy.Request{Action: r.Action, Resource: r.Resource, Context: ctx}
}
