package web

import (
	"context"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/go-logr/logr/testr"
	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/strata-dev/strata/internal/console/store/storetest"
	"github.com/strata-dev/strata/internal/testutil"
)

// TestSignIn runs the console off loopback against a real API server as
// the hub: tokens are reviewed and views authorized by it. The person is a
// ServiceAccount (envtest's API server issues and reviews their tokens)
// allowed to list clusters but not machines.
func TestSignIn(t *testing.T) {
	_, cfg := testutil.StartEnv(t)
	admin, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	token := viewerToken(t, ctx, admin)

	st, _ := storetest.Open(t, "", storetest.FleetSQL(t))
	srv, err := New(Options{Store: st, Address: "0.0.0.0:8443", TLSCertFile: "unused.pem", TLSKeyFile: "unused-key.pem", Auth: admin, Logger: testr.New(t)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Close)
	ts := httptest.NewTLSServer(srv.Handler())
	t.Cleanup(ts.Close)
	jar, err := cookiejar.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	c := ts.Client()
	c.Jar = jar
	c.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }

	do := func(method, path string, form url.Values, origin string) (reply, string) {
		t.Helper()
		var body io.Reader
		if form != nil {
			body = strings.NewReader(form.Encode())
		}
		req, err := http.NewRequest(method, ts.URL+path, body)
		if err != nil {
			t.Fatal(err)
		}
		if form != nil {
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		}
		if origin != "" {
			req.Header.Set("Origin", origin)
		}
		res, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close() //nolint:errcheck // test
		b, _ := io.ReadAll(res.Body)
		return reply{method: method, path: path, status: res.StatusCode, location: res.Header.Get("Location"), cookie: res.Header.Get("Set-Cookie")}, string(b)
	}
	expect := func(res reply, body string, status int, want string) {
		t.Helper()
		if res.status != status || !strings.Contains(body+res.location, want) {
			t.Errorf("%s %s = %d (Location %q), want %d and %q:\n%s", res.method, res.path, res.status, res.location, status, want, body)
		}
	}

	res, body := do(http.MethodGet, "/clusters", nil, "")
	expect(res, body, http.StatusSeeOther, "/login?next=%2Fclusters")
	res, body = do(http.MethodGet, "/events", nil, "")
	expect(res, body, http.StatusUnauthorized, "sign in first")
	res, body = do(http.MethodGet, "/login", nil, "")
	expect(res, body, http.StatusOK, `name="token"`)

	res, body = do(http.MethodPost, "/login", url.Values{"token": {"not-a-token"}, "next": {"/clusters"}}, ts.URL)
	expect(res, body, http.StatusUnauthorized, "Sign-in failed: the hub did not accept the token")
	res, body = do(http.MethodPost, "/login", url.Values{"token": {""}}, ts.URL)
	expect(res, body, http.StatusBadRequest, "Paste a Kubernetes bearer token")
	res, body = do(http.MethodPost, "/login", url.Values{"token": {token}}, "https://evil.example")
	expect(res, body, http.StatusForbidden, "not sent from this console")

	res, body = do(http.MethodPost, "/login", url.Values{"token": {token}, "next": {"/clusters"}}, ts.URL)
	expect(res, body, http.StatusSeeOther, "/clusters")
	cookie := res.cookie
	for _, attr := range []string{"HttpOnly", "Secure", "SameSite=Strict"} {
		if !strings.Contains(cookie, attr) {
			t.Errorf("the session cookie %q lacks %s", cookie, attr)
		}
	}
	if strings.Contains(cookie, token) {
		t.Error("the session cookie holds the token")
	}

	res, body = do(http.MethodGet, "/clusters", nil, "")
	expect(res, body, http.StatusOK, "system:serviceaccount:default:viewer")
	res, body = do(http.MethodGet, "/map", nil, "")
	expect(res, body, http.StatusForbidden, "list machines.metal.strata.dev")
	res, body = do(http.MethodGet, "/apps", nil, "")
	expect(res, body, http.StatusOK, "No apps you may see.")
	res, body = do(http.MethodGet, "/apps/west/shop/web", nil, "")
	expect(res, body, http.StatusForbidden, "list statelessapps.apps.strata.dev in namespace shop")
	res, body = do(http.MethodGet, "/search?q=dc1", nil, "")
	expect(res, body, http.StatusOK, "0 results")

	res, body = do(http.MethodPost, "/logout", url.Values{}, ts.URL)
	expect(res, body, http.StatusSeeOther, "/login")
	res, body = do(http.MethodGet, "/clusters", nil, "")
	expect(res, body, http.StatusSeeOther, "/login")
}

// viewerToken makes the ServiceAccount default/viewer, lets it list the
// hub's clusters and pools (not machines, not apps), and returns a token.
func viewerToken(t *testing.T, ctx context.Context, admin kubernetes.Interface) string {
	t.Helper()
	sa := &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "viewer"}}
	if _, err := admin.CoreV1().ServiceAccounts("default").Create(ctx, sa, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	role := &rbacv1.ClusterRole{ObjectMeta: metav1.ObjectMeta{Name: "fleet-viewer"}, Rules: []rbacv1.PolicyRule{
		{APIGroups: []string{"fleet.strata.dev"}, Resources: []string{"clusters", "pools"}, Verbs: []string{"list"}},
	}}
	if _, err := admin.RbacV1().ClusterRoles().Create(ctx, role, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	binding := &rbacv1.ClusterRoleBinding{ObjectMeta: metav1.ObjectMeta{Name: "fleet-viewer"},
		RoleRef:  rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: "fleet-viewer"},
		Subjects: []rbacv1.Subject{{Kind: rbacv1.ServiceAccountKind, Namespace: "default", Name: "viewer"}}}
	if _, err := admin.RbacV1().ClusterRoleBindings().Create(ctx, binding, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	tr, err := admin.CoreV1().ServiceAccounts("default").CreateToken(ctx, "viewer", &authenticationv1.TokenRequest{}, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("requesting a token of default/viewer: %v", err)
	}
	return tr.Status.Token
}

// reply is what the sign-in test checks of a response.
type reply struct {
	method, path     string
	status           int
	location, cookie string
}
