package awsapi

// UnauthenticatedBudget says whether a call refused before a principal
// was known (missing, malformed or badly signed credentials, an unknown
// access key) from source, with the protocol's error code, is audited one
// by one; a call it does not admit is counted for a summary instead.
// audit.Unauthenticated implements it.
type UnauthenticatedBudget interface {
	Admit(source, code string) bool
}
