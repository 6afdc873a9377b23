package awsapi

func stsOps() map[string]*op {
	return map[string]*op{
		"GetCallerIdentity": {name: "GetCallerIdentity", action: "sts:GetCallerIdentity", readOnly: true, run: func(c *call) (any, error) {
			// AWS answers GetCallerIdentity for every authenticated principal,
			// whatever its policies say.
			c.allowAlways()
			p := c.auth.Principal
			return struct {
				ARN     string `xml:"Arn"`
				UserID  string `xml:"UserId"`
				Account string `xml:"Account"`
			}{p.ARN, p.UserID, p.Account}, nil
		}},
	}
}
