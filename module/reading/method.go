package reading

import "strings"

// MethodOverrideHeaders are the headers frameworks take a method from
// (Symfony and Laravel, Express's method-override, ASP.NET Core, Rack,
// Google's and Microsoft's APIs), in canonical form.
var MethodOverrideHeaders = []string{"X-Http-Method-Override", "X-Http-Method", "X-Method-Override"}

// MethodParam is the parameter frameworks take a method from, in the query
// or a form or JSON body (Rails, Laravel, Symfony, Express, ASP.NET Core).
var MethodParam = NewName("_method")

// AccountParam is the default parameter naming the target account.
var AccountParam = NewName("accountId")

// AccountHeader is the default header naming the target account.
const AccountHeader = "X-Account-Id"

// OverrideMethods returns the methods an override value may be read as:
// the value as sent (without surrounding white space) and in upper case,
// as frameworks upper-case it. ok is false when the value is not one method
// ("GET, DELETE", "DEL ETE", "DEL%45TE"): frameworks disagree on what such
// values mean (Express takes the part before a comma), so nothing is
// judged and the request is refused.
func OverrideMethods(v string) (asSent, upper string, ok bool) {
	v = strings.TrimSpace(v)
	if v == "" || len(v) > 32 {
		return "", "", false
	}
	for i := 0; i < len(v); i++ {
		c := v[i]
		if !('A' <= c && c <= 'Z' || 'a' <= c && c <= 'z' || c == '-' || c == '_') {
			return "", "", false
		}
	}
	return v, strings.ToUpper(v), true
}
