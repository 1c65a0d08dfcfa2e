package web

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	authenticationv1 "k8s.io/api/authentication/v1"
	authorizationv1 "k8s.io/api/authorization/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/utils/clock"
)

// Access off loopback: a person signs in with a Kubernetes bearer token,
// which the hub reviews (TokenReview); the console keeps a server-side
// session (the token is dropped once reviewed) and asks the hub, per view,
// whether the user may list what the view shows (SubjectAccessReview,
// cached a minute). The views map to these resources on the hub, all with
// verb list:
//
//	fleet map, machines, disruptions     machines.metal.strata.dev (virtual: no such API
//	                                     exists; grant it in a ClusterRole to let people
//	                                     see the broker's machines)
//	clusters, pools, Nodes               clusters.fleet.strata.dev, pools.fleet.strata.dev
//	rollouts                             maintenancerollouts.fleet.strata.dev
//	apps and pods of a namespace         statelessapps.apps.strata.dev in that namespace
//
// Lists of apps, pods and search results keep only what the user may see.

// Session and cache lifetimes.
const (
	sessionTTL    = 8 * time.Hour
	accessTTL     = time.Minute
	reviewTimeout = 10 * time.Second
	sessionCookie = "strata_console_session"
	maxSessions   = 10000
)

// access is a permission a view needs: list Resource in Group (in
// Namespace when set) on the hub.
type access struct {
	Group, Resource, Namespace string
}

func (a access) String() string {
	s := "list " + a.Resource + "." + a.Group
	if a.Namespace != "" {
		s += " in namespace " + a.Namespace
	}
	return s
}

var (
	accessMachines = access{Group: "metal.strata.dev", Resource: "machines"}
	accessClusters = access{Group: "fleet.strata.dev", Resource: "clusters"}
	accessPools    = access{Group: "fleet.strata.dev", Resource: "pools"}
	accessRollouts = access{Group: "fleet.strata.dev", Resource: "maintenancerollouts"}
)

func accessApps(namespace string) access {
	return access{Group: "apps.strata.dev", Resource: "statelessapps", Namespace: namespace}
}

// user is who signed in, as the hub's TokenReview said.
type user struct {
	Name   string
	UID    string
	Groups []string
	Extra  map[string]authorizationv1.ExtraValue
}

type session struct {
	user    user
	expires time.Time
}

type accessEntry struct {
	allowed bool
	expires time.Time
}

type authenticator struct {
	client kubernetes.Interface
	clock  clock.Clock

	mu       sync.Mutex
	sessions map[string]*session
	access   map[string]accessEntry
}

func newAuthenticator(client kubernetes.Interface, clk clock.Clock) *authenticator {
	return &authenticator{client: client, clock: clk, sessions: map[string]*session{}, access: map[string]accessEntry{}}
}

// reviewError is a token the hub did not accept.
type reviewError struct{ reason string }

func (e *reviewError) Error() string { return e.reason }

// signIn reviews a token and opens a session for its user.
func (a *authenticator) signIn(ctx context.Context, token string) (string, user, error) {
	ctx, cancel := context.WithTimeout(ctx, reviewTimeout)
	defer cancel()
	review, err := a.client.AuthenticationV1().TokenReviews().Create(ctx, &authenticationv1.TokenReview{
		Spec: authenticationv1.TokenReviewSpec{Token: token},
	}, metav1.CreateOptions{})
	if err != nil {
		return "", user{}, fmt.Errorf("reviewing the token with the hub: %w", err)
	}
	if !review.Status.Authenticated {
		reason := "the hub did not accept the token"
		if review.Status.Error != "" {
			reason += ": " + review.Status.Error
		}
		return "", user{}, &reviewError{reason: reason}
	}
	u := user{Name: review.Status.User.Username, UID: review.Status.User.UID, Groups: review.Status.User.Groups,
		Extra: map[string]authorizationv1.ExtraValue{}}
	for k, v := range review.Status.User.Extra {
		u.Extra[k] = authorizationv1.ExtraValue(v)
	}
	id, err := randomID()
	if err != nil {
		return "", user{}, err
	}
	now := a.clock.Now()
	a.mu.Lock()
	defer a.mu.Unlock()
	if len(a.sessions) >= maxSessions {
		for k, s := range a.sessions {
			if now.After(s.expires) {
				delete(a.sessions, k)
			}
		}
	}
	a.sessions[id] = &session{user: u, expires: now.Add(sessionTTL)}
	return id, u, nil
}

func (a *authenticator) session(id string) (user, bool) {
	a.mu.Lock()
	defer a.mu.Unlock()
	s, ok := a.sessions[id]
	if !ok {
		return user{}, false
	}
	if a.clock.Now().After(s.expires) {
		delete(a.sessions, id)
		return user{}, false
	}
	return s.user, true
}

func (a *authenticator) signOut(id string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	delete(a.sessions, id)
}

// allowed asks the hub whether u may have acc, from the cache when it
// asked within accessTTL.
func (a *authenticator) allowed(ctx context.Context, u user, acc access) (bool, error) {
	key := u.Name + "\x00" + u.UID + "\x00" + strings.Join(u.Groups, ",") + "\x00" + acc.String()
	now := a.clock.Now()
	a.mu.Lock()
	e, ok := a.access[key]
	a.mu.Unlock()
	if ok && now.Before(e.expires) {
		return e.allowed, nil
	}
	ctx, cancel := context.WithTimeout(ctx, reviewTimeout)
	defer cancel()
	sar, err := a.client.AuthorizationV1().SubjectAccessReviews().Create(ctx, &authorizationv1.SubjectAccessReview{
		Spec: authorizationv1.SubjectAccessReviewSpec{
			User: u.Name, UID: u.UID, Groups: u.Groups, Extra: u.Extra,
			ResourceAttributes: &authorizationv1.ResourceAttributes{
				Verb: "list", Group: acc.Group, Resource: acc.Resource, Namespace: acc.Namespace,
			},
		},
	}, metav1.CreateOptions{})
	if err != nil {
		return false, fmt.Errorf("asking the hub whether %s may %s: %w", u.Name, acc, err)
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if len(a.access) >= maxSessions {
		clear(a.access)
	}
	a.access[key] = accessEntry{allowed: sar.Status.Allowed, expires: now.Add(accessTTL)}
	return sar.Status.Allowed, nil
}

func randomID() (string, error) {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("making a session id: %w", err)
	}
	return base64.RawURLEncoding.EncodeToString(b), nil
}

type userKey struct{}

func userFrom(ctx context.Context) (user, bool) {
	u, ok := ctx.Value(userKey{}).(user)
	return u, ok
}

// requireUser lets signed-in people through (everyone on loopback). The
// others go to the sign-in page, or get a 401 where a redirect would not
// help (event streams and fragments, which the script reloads).
func (s *Server) requireUser(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !s.signIn {
			next.ServeHTTP(w, r)
			return
		}
		if c, err := r.Cookie(sessionCookie); err == nil {
			if u, ok := s.auth.session(c.Value); ok {
				next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), userKey{}, u)))
				return
			}
		}
		if r.URL.Path == "/events" || isFragment(r) {
			http.Error(w, "sign in first", http.StatusUnauthorized)
			return
		}
		http.Redirect(w, r, "/login?next="+url.QueryEscape(r.URL.RequestURI()), http.StatusSeeOther)
	})
}

// can reports whether the request's user has acc (always on loopback).
func (s *Server) can(r *http.Request, acc access) (bool, error) {
	if !s.signIn {
		return true, nil
	}
	u, ok := userFrom(r.Context())
	if !ok {
		return false, nil
	}
	return s.auth.allowed(r.Context(), u, acc)
}

// need fails with a 403 naming acc when the user lacks it.
func (s *Server) need(r *http.Request, acc access) error {
	ok, err := s.can(r, acc)
	if err != nil {
		return err
	}
	if !ok {
		return &httpError{status: http.StatusForbidden, title: "Not allowed",
			message: fmt.Sprintf("This view needs the permission to %s on the hub. Ask your platform team for a Role or ClusterRole that grants it.", acc)}
	}
	return nil
}

// namespaceFilter answers, per namespace, whether the user may see its
// apps and pods, asking each namespace once per request.
func (s *Server) namespaceFilter(r *http.Request) func(string) (bool, error) {
	seen := map[string]bool{}
	return func(ns string) (bool, error) {
		if ok, done := seen[ns]; done {
			return ok, nil
		}
		ok, err := s.can(r, accessApps(ns))
		if err != nil {
			return false, err
		}
		seen[ns] = ok
		return ok, nil
	}
}

// sameOrigin is the CSRF check of the two POSTs (sign-in and sign-out),
// beside the session cookie's SameSite=Strict: the browser's Origin (or
// Referer) must be this server.
func sameOrigin(r *http.Request) bool {
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	want := scheme + "://" + r.Host
	if o := r.Header.Get("Origin"); o != "" {
		return o == want
	}
	ref := r.Header.Get("Referer")
	return ref == want || strings.HasPrefix(ref, want+"/")
}

// safeNext keeps a post-sign-in redirect on this site.
func safeNext(next string) string {
	if !strings.HasPrefix(next, "/") || strings.HasPrefix(next, "//") || strings.HasPrefix(next, "/\\") {
		return "/"
	}
	return next
}

func (s *Server) serveLogin(w http.ResponseWriter, r *http.Request) {
	if !s.signIn {
		http.Redirect(w, r, "/", http.StatusSeeOther)
		return
	}
	p := s.newPage(r, "login", "Sign in")
	p.Data = loginView{Next: safeNext(r.URL.Query().Get("next"))}
	if r.Method != http.MethodPost {
		s.render(w, r, p, http.StatusOK)
		return
	}
	if !sameOrigin(r) {
		s.fail(w, r, &httpError{status: http.StatusForbidden, title: "Sign-in refused", message: "The sign-in form was not sent from this console's page."})
		return
	}
	r.Body = http.MaxBytesReader(w, r.Body, 64<<10)
	if err := r.ParseForm(); err != nil {
		s.fail(w, r, &httpError{status: http.StatusBadRequest, title: "Sign-in refused", message: "The sign-in form could not be read."})
		return
	}
	view := loginView{Next: safeNext(r.PostForm.Get("next"))}
	token := strings.TrimSpace(r.PostForm.Get("token"))
	token = strings.TrimPrefix(token, "Bearer ")
	if token == "" {
		view.Error = "Paste a Kubernetes bearer token for the hub."
		p.Data = view
		s.render(w, r, p, http.StatusBadRequest)
		return
	}
	id, u, err := s.auth.signIn(r.Context(), token)
	if rev := (*reviewError)(nil); errors.As(err, &rev) {
		view.Error = "Sign-in failed: " + rev.reason + "."
		p.Data = view
		s.render(w, r, p, http.StatusUnauthorized)
		return
	}
	if err != nil {
		s.log.Error(err, "Reviewing a sign-in token")
		view.Error = "Sign-in failed: the hub could not be asked to review the token. Try again later."
		p.Data = view
		s.render(w, r, p, http.StatusServiceUnavailable)
		return
	}
	s.log.Info("Signed in to the console", "user", u.Name)
	http.SetCookie(w, &http.Cookie{Name: sessionCookie, Value: id, Path: "/", MaxAge: int(sessionTTL.Seconds()),
		HttpOnly: true, Secure: true, SameSite: http.SameSiteStrictMode})
	http.Redirect(w, r, view.Next, http.StatusSeeOther)
}

func (s *Server) serveLogout(w http.ResponseWriter, r *http.Request) {
	if !s.signIn {
		http.Redirect(w, r, "/", http.StatusSeeOther)
		return
	}
	if !sameOrigin(r) {
		s.fail(w, r, &httpError{status: http.StatusForbidden, title: "Sign-out refused", message: "The sign-out form was not sent from this console's page."})
		return
	}
	if c, err := r.Cookie(sessionCookie); err == nil {
		s.auth.signOut(c.Value)
	}
	http.SetCookie(w, &http.Cookie{Name: sessionCookie, Value: "", Path: "/", MaxAge: -1, HttpOnly: true, Secure: true, SameSite: http.SameSiteStrictMode})
	http.Redirect(w, r, "/login", http.StatusSeeOther)
}

type loginView struct {
	Next, Error string
}
