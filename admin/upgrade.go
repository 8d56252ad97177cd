package admin

import (
	"net/http"

	"github.com/tokengate/tokengate/module/errcode"
)

// operatorAPI answers what keeps an operator's route from running — another
// method, no tokengate app, a store that cannot be opened — and otherwise
// returns the API.
func (a *AdminEndpoint) operatorAPI(w http.ResponseWriter, r *http.Request, method string) (*API, bool) {
	if r.Method != method {
		methodNotAllowed(w, []string{method})
		return nil, false
	}
	if a.backend == nil {
		writeError(w, &apiError{code: errcode.StoreUnavailable,
			msg: "tokengate is not configured here: add the tokengate global option or a tokengate handler"})
		return nil, false
	}
	api, err := a.backend.get(r)
	if err != nil {
		unavailable(w, err)
		return nil, false
	}
	return api, true
}

// upgradePath is where Caddy's admin endpoint moves the store to this
// build's schema version, for `tokengate store upgrade`: the operator
// only, never on a tokengate_admin mount (store.Upgrade).
const upgradePath = "/store/upgrade"

// upgradeView is what an upgrade did.
type upgradeView struct {
	Version       int      `json:"version"`
	Upgraded      bool     `json:"upgraded"`
	UsersRecopied int      `json:"users_recopied"`
	OlderGateways []string `json:"older_gateways"`
}

// serveUpgrade runs store.Upgrade; it takes as long as rewriting every
// user's copies takes, within the request's life.
func (a *AdminEndpoint) serveUpgrade(w http.ResponseWriter, r *http.Request) {
	api, ok := a.operatorAPI(w, r, http.MethodPost)
	if !ok {
		return
	}
	if r.ContentLength != 0 { // no body, or an empty object: it takes no field
		body, err := readBody(w, r)
		if err == nil {
			_, err = decodeObject(body, fields{})
		}
		if err != nil {
			ae, _ := asAPIError(err)
			writeError(w, ae)
			return
		}
	}
	res, err := api.store.Upgrade(r.Context())
	if err != nil {
		ae, _ := asAPIError(err)
		writeError(w, ae)
		return
	}
	if res.Holdouts == nil {
		res.Holdouts = []string{}
	}
	writeJSON(w, http.StatusOK, upgradeView{Version: res.Version, Upgraded: res.Upgraded, UsersRecopied: res.Copies, OlderGateways: res.Holdouts})
}

// OperatorRoutes are the routes only Caddy's admin endpoint serves, under
// /tokengate, beside the API's (API.Routes): for the operator's commands.
var OperatorRoutes = []string{"GET " + statusPath, "GET " + snapshotPath, "POST " + upgradePath}
