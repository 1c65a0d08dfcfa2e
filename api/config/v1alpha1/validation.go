package v1alpha1

import (
	"fmt"
	"net"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

// Validate checks a defaulted HubConfiguration; each error names its field.
func (c *HubConfiguration) Validate() field.ErrorList {
	errs := c.validate(nil)
	errs = append(errs, c.Broker.validate(field.NewPath("broker"))...)
	errs = append(errs, positive(field.NewPath("cluster", "probeInterval"), c.Cluster.ProbeInterval)...)
	if ttl := c.Pool.BootstrapTokenTTL; ttl != nil && ttl.Duration < MinBootstrapTokenTTL {
		errs = append(errs, field.Invalid(field.NewPath("pool", "bootstrapTokenTTL"), ttl.Duration.String(),
			fmt.Sprintf("must be at least %s: machines join with the token for minutes, and it is replaced after two thirds of its life", MinBootstrapTokenTTL)))
	}
	errs = append(errs, positive(field.NewPath("clusterManager", "drainDeadline"), c.ClusterManager.DrainDeadline)...)
	rem := field.NewPath("remediation")
	errs = append(errs, positive(rem.Child("notReadyThreshold"), c.Remediation.NotReadyThreshold)...)
	errs = append(errs, positive(rem.Child("faultHoldOff"), c.Remediation.FaultHoldOff)...)
	errs = append(errs, positive(rem.Child("resyncInterval"), c.Remediation.ResyncInterval)...)
	errs = append(errs, positive(field.NewPath("rollout", "activeInterval"), c.Rollout.ActiveInterval)...)
	wc := field.NewPath("workloadClusters")
	errs = append(errs, positive(wc.Child("requestTimeout"), c.WorkloadClusters.RequestTimeout)...)
	errs = append(errs, positive(wc.Child("connectTimeout"), c.WorkloadClusters.ConnectTimeout)...)
	errs = append(errs, positive(wc.Child("probeInterval"), c.WorkloadClusters.ProbeInterval)...)
	if n := deref(c.WorkloadClusters.ProbeFailureThreshold); n < 1 {
		errs = append(errs, field.Invalid(wc.Child("probeFailureThreshold"), n, "must be at least 1"))
	}
	errs = append(errs, (&ClientConnection{QPS: c.WorkloadClusters.QPS, Burst: c.WorkloadClusters.Burst}).validate(wc)...)
	switch d := c.Jobs.Dispatcher; d {
	case StrataDispatcher, KueueAllAtOnceDispatcher, KueueIncrementalDispatcher:
	default:
		errs = append(errs, field.NotSupported(field.NewPath("jobs", "dispatcher"), d,
			[]JobsDispatcher{StrataDispatcher, KueueAllAtOnceDispatcher, KueueIncrementalDispatcher}))
	}
	return errs
}

// Validate checks a defaulted AppsConfiguration; each error names its field.
func (c *AppsConfiguration) Validate() field.ErrorList {
	errs := c.validate(nil)
	return append(errs, clusterName(field.NewPath("clusterName"), c.ClusterName)...)
}

// Validate checks a defaulted WebhookConfiguration; each error names its
// field.
func (c *WebhookConfiguration) Validate() field.ErrorList {
	errs := clusterName(field.NewPath("clusterName"), c.ClusterName)
	if p := c.Port; p == nil || *p < 1 || *p > 65535 {
		errs = append(errs, field.Invalid(field.NewPath("port"), deref(p), "must be a port, 1 to 65535"))
	}
	if c.CertDir == "" {
		errs = append(errs, field.Required(field.NewPath("certDir"), "the directory of tls.crt and tls.key"))
	}
	for i, name := range c.ValidatingWebhookConfigurations {
		for _, msg := range validation.IsDNS1123Subdomain(name) {
			errs = append(errs, field.Invalid(field.NewPath("validatingWebhookConfigurations").Index(i), name, msg))
		}
	}
	errs = append(errs, bindAddress(field.NewPath("health", "bindAddress"), c.Health.BindAddress)...)
	errs = append(errs, bindAddress(field.NewPath("metrics", "bindAddress"), c.Metrics.BindAddress)...)
	return append(errs, c.ClientConnection.validate(field.NewPath("clientConnection"))...)
}

// Validate checks a defaulted BrokerConfiguration; each error names its
// field.
func (c *BrokerConfiguration) Validate() field.ErrorList {
	errs := c.Database.validate(field.NewPath("database"))
	errs = append(errs, hostPort(field.NewPath("listen"), c.Listen)...)
	if c.MetricsListen != "0" {
		errs = append(errs, hostPort(field.NewPath("metricsListen"), c.MetricsListen)...)
	}
	if (c.TLS.CertFile == "") != (c.TLS.KeyFile == "") {
		errs = append(errs, field.Required(field.NewPath("tls"), "certFile and keyFile go together"))
	}
	budget := field.NewPath("budget")
	if v := c.Budget.MaxPlannedZones; v == nil || *v < 1 {
		errs = append(errs, field.Invalid(budget.Child("maxPlannedZones"), deref(v), "must be at least 1"))
	}
	if v := c.Budget.MaxPoolDisruptedPercent; v == nil || *v < 1 || *v > 100 {
		errs = append(errs, field.Invalid(budget.Child("maxPoolDisruptedPercent"), deref(v), "must be within 1..100"))
	}
	prov := field.NewPath("provisioner")
	switch c.Provisioner.Kind {
	case ProvisionerSim:
		sim := prov.Child("sim")
		if s := c.Provisioner.Sim; s != nil {
			errs = append(errs, positive(sim.Child("joinDuration"), s.JoinDuration)...)
			errs = append(errs, positive(sim.Child("wipeDuration"), s.WipeDuration)...)
			if s.MaintenanceDuration == nil || s.MaintenanceDuration.Duration < 0 {
				errs = append(errs, field.Invalid(sim.Child("maintenanceDuration"), durationString(s.MaintenanceDuration), "must not be negative"))
			}
			errs = append(errs, s.validateClusters(sim.Child("clusters"))...)
		}
	case ProvisionerNone:
		if c.Provisioner.Sim != nil {
			errs = append(errs, field.Forbidden(prov.Child("sim"), "applies to kind sim, not none"))
		}
	default:
		errs = append(errs, field.NotSupported(prov.Child("kind"), c.Provisioner.Kind, []ProvisionerKind{ProvisionerSim, ProvisionerNone}))
	}
	errs = append(errs, c.validateAuth()...)
	return append(errs, positive(field.NewPath("leaderElection", "retryPeriod"), c.LeaderElection.RetryPeriod)...)
}

func (c *ControllerManager) validate(path *field.Path) field.ErrorList {
	errs := bindAddress(path.Child("health", "bindAddress"), c.Health.BindAddress)
	errs = append(errs, bindAddress(path.Child("metrics", "bindAddress"), c.Metrics.BindAddress)...)
	errs = append(errs, c.LeaderElection.validate(path.Child("leaderElection"))...)
	return append(errs, c.ClientConnection.validate(path.Child("clientConnection"))...)
}

func (l *LeaderElection) validate(path *field.Path) field.ErrorList {
	var errs field.ErrorList
	for _, msg := range validation.IsDNS1123Subdomain(l.ResourceName) {
		errs = append(errs, field.Invalid(path.Child("resourceName"), l.ResourceName, msg))
	}
	for _, msg := range validation.IsDNS1123Label(l.ResourceNamespace) {
		errs = append(errs, field.Invalid(path.Child("resourceNamespace"), l.ResourceNamespace, msg))
	}
	lease, renew, retry := path.Child("leaseDuration"), path.Child("renewDeadline"), path.Child("retryPeriod")
	errs = append(errs, positive(lease, l.LeaseDuration)...)
	errs = append(errs, positive(renew, l.RenewDeadline)...)
	errs = append(errs, positive(retry, l.RetryPeriod)...)
	if len(errs) > 0 {
		return errs
	}
	// As client-go's leader election requires: a leader gives up before
	// the others may take over, and retries more than once before that.
	if l.RenewDeadline.Duration >= l.LeaseDuration.Duration {
		errs = append(errs, field.Invalid(renew, l.RenewDeadline.Duration.String(), "must be less than leaseDuration "+l.LeaseDuration.Duration.String()))
	}
	if l.RetryPeriod.Duration >= l.RenewDeadline.Duration {
		errs = append(errs, field.Invalid(retry, l.RetryPeriod.Duration.String(), "must be less than renewDeadline "+l.RenewDeadline.Duration.String()))
	}
	return errs
}

func (c *ClientConnection) validate(path *field.Path) field.ErrorList {
	var errs field.ErrorList
	if c.QPS == nil || *c.QPS <= 0 {
		errs = append(errs, field.Invalid(path.Child("qps"), deref(c.QPS), "must be positive"))
	}
	if c.Burst == nil || *c.Burst < 1 {
		errs = append(errs, field.Invalid(path.Child("burst"), deref(c.Burst), "must be at least 1"))
	}
	return errs
}

func (b *BrokerClient) validate(path *field.Path) field.ErrorList {
	var errs field.ErrorList
	if len(b.Addresses) == 0 {
		errs = append(errs, field.Required(path.Child("addresses"), "the broker's gRPC endpoints, e.g. dns:///strata-broker.strata-system.svc:9090"))
	}
	for i, a := range b.Addresses {
		if a == "" {
			errs = append(errs, field.Required(path.Child("addresses").Index(i), "an address"))
		}
	}
	if b.ClientCertDir != "" && b.TLSCAFile == "" {
		errs = append(errs, field.Required(path.Child("tlsCAFile"), "clientCertDir needs it: client certificates are sent over TLS"))
	}
	if b.TokenFile != "" && b.TLSCAFile == "" {
		for i, a := range b.Addresses {
			if !IsLoopbackTarget(a) {
				errs = append(errs, field.Invalid(path.Child("addresses").Index(i), a,
					"is not a loopback address, and a bearer token (tokenFile) sent there in plaintext can be read by anyone on the network: give tlsCAFile (better: clientCertDir)"))
			}
		}
	}
	return append(errs, positive(path.Child("timeout"), b.Timeout)...)
}

func clusterName(path *field.Path, name string) field.ErrorList {
	if name == "" {
		return field.ErrorList{field.Required(path, "the cluster's name, as registered on the hub")}
	}
	var errs field.ErrorList
	for _, msg := range validation.IsDNS1123Subdomain(name) {
		errs = append(errs, field.Invalid(path, name, msg))
	}
	return errs
}

// bindAddress is host:port, or "0" (off), as controller-runtime takes them.
func bindAddress(path *field.Path, addr string) field.ErrorList {
	if addr == "0" {
		return nil
	}
	return hostPort(path, addr)
}

func hostPort(path *field.Path, addr string) field.ErrorList {
	_, port, err := net.SplitHostPort(addr)
	if err != nil {
		return field.ErrorList{field.Invalid(path, addr, "must be host:port (\"0\" turns it off where allowed)")}
	}
	if n, err := strconv.Atoi(port); err != nil || n < 0 || n > 65535 {
		return field.ErrorList{field.Invalid(path, addr, "the port must be 0 to 65535")}
	}
	return nil
}

func positive(path *field.Path, d *metav1.Duration) field.ErrorList {
	if d == nil || d.Duration <= 0 {
		return field.ErrorList{field.Invalid(path, durationString(d), "must be positive")}
	}
	return nil
}

func durationString(d *metav1.Duration) string {
	if d == nil {
		return time.Duration(0).String()
	}
	return d.Duration.String()
}

func deref[T any](p *T) T {
	var zero T
	if p == nil {
		return zero
	}
	return *p
}

// validateClusters checks each cluster's name (unique), kubeconfig and
// kubelet port.
func (s *SimProvisioner) validateClusters(path *field.Path) field.ErrorList {
	var errs field.ErrorList
	seen := map[string]bool{}
	for i, c := range s.Clusters {
		p := path.Index(i)
		errs = append(errs, clusterName(p.Child("name"), c.Name)...)
		if seen[c.Name] {
			errs = append(errs, field.Duplicate(p.Child("name"), c.Name))
		}
		seen[c.Name] = true
		if c.Kubeconfig == "" {
			errs = append(errs, field.Required(p.Child("kubeconfig"), "the path of the cluster's kubeconfig"))
		}
		if c.KubeletPort < 0 || c.KubeletPort > 65535 {
			errs = append(errs, field.Invalid(p.Child("kubeletPort"), c.KubeletPort, "must be a port, 1 to 65535, or 0 for none"))
		}
	}
	return errs
}

var (
	// rpcName is a method of strata.broker.v1.BrokerService (the broker
	// knows which exist), or package.Service/Method of another service.
	rpcName = regexp.MustCompile(`^([a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)*\.[A-Z][A-Za-z0-9]*/)?[A-Z][A-Za-z0-9]*$`)
	// creatableReasons are the reasons of the disruptions a caller may
	// create (pool-shrink is the broker's own).
	creatableReasons = []string{"planned-upgrade", "hardware-repair", "decommission", "remediation"}
)

// Validate checks a defaulted BrokerPolicy; each error names its field.
func (p *BrokerPolicy) Validate() field.ErrorList {
	var errs field.ErrorList
	known := map[string]bool{}
	for _, r := range BuiltinBrokerRoles {
		known[r] = true
	}
	for i, r := range p.Roles {
		path := field.NewPath("roles").Index(i)
		switch {
		case r.Name == "":
			errs = append(errs, field.Required(path.Child("name"), "the role's name"))
		case slices.Contains(BuiltinBrokerRoles, r.Name):
			errs = append(errs, field.Invalid(path.Child("name"), r.Name, "is a built-in role; name yours differently"))
		case known[r.Name]:
			errs = append(errs, field.Duplicate(path.Child("name"), r.Name))
		default:
			for _, msg := range validation.IsDNS1123Label(r.Name) {
				errs = append(errs, field.Invalid(path.Child("name"), r.Name, msg))
			}
		}
		known[r.Name] = true
		if len(r.RPCs) == 0 {
			errs = append(errs, field.Required(path.Child("rpcs"), "the RPCs the role may call, e.g. ListPools, or \"*\""))
		}
		for j, rpc := range r.RPCs {
			if rpc != "*" && !rpcName.MatchString(rpc) {
				errs = append(errs, field.Invalid(path.Child("rpcs").Index(j), rpc,
					"must be a BrokerService method (CreatePool), package.Service/Method, or \"*\""))
			}
		}
		for j, reason := range r.DisruptionReasons {
			if !slices.Contains(creatableReasons, reason) {
				errs = append(errs, field.NotSupported(path.Child("disruptionReasons").Index(j), reason, creatableReasons))
			}
		}
	}
	for i, b := range p.Bindings {
		path := field.NewPath("bindings").Index(i)
		switch {
		case b.Role == "":
			errs = append(errs, field.Required(path.Child("role"), "a built-in role or one of roles"))
		case !known[b.Role]:
			errs = append(errs, field.Invalid(path.Child("role"), b.Role, "is neither a built-in role ("+strings.Join(BuiltinBrokerRoles, ", ")+") nor one of roles"))
		}
		if len(b.Users) == 0 && len(b.Groups) == 0 {
			errs = append(errs, field.Required(path, "users or groups to give the role to"))
		}
		for j, u := range b.Users {
			if u == "" {
				errs = append(errs, field.Required(path.Child("users").Index(j), "an identity's name"))
			}
		}
		for j, g := range b.Groups {
			if g == "" {
				errs = append(errs, field.Required(path.Child("groups").Index(j), "a group's name"))
			}
		}
	}
	return errs
}

// validateAuth checks how the broker authenticates its callers: client
// certificates need a serving certificate, and a bearer token never
// crosses the network in plaintext.
func (c *BrokerConfiguration) validateAuth() field.ErrorList {
	var errs field.ErrorList
	if c.TLS.ClientCAFile != "" && c.TLS.CertFile == "" {
		errs = append(errs, field.Required(field.NewPath("tls", "certFile"), "tls.clientCAFile needs a serving certificate: client certificates are sent over TLS"))
	}
	if c.TokenFile == "" {
		return errs
	}
	if c.Insecure {
		errs = append(errs, field.Forbidden(field.NewPath("insecure"), "not with tokenFile: insecure accepts anyone, the token would guard nothing"))
	}
	if host, _, err := net.SplitHostPort(c.Listen); err == nil && c.TLS.CertFile == "" && !IsLoopbackHost(host) {
		errs = append(errs, field.Invalid(field.NewPath("tokenFile"), c.TokenFile,
			"a bearer token over plaintext to non-loopback address "+c.Listen+" can be read by anyone on the network: give tls.certFile and tls.keyFile (better: tls.clientCAFile and client certificates)"))
	}
	return errs
}

// IsLoopbackTarget says whether a broker address (host:port, or a gRPC
// target such as dns:///...) is a loopback host:port.
func IsLoopbackTarget(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	return err == nil && !strings.Contains(addr, "/") && IsLoopbackHost(host)
}

// IsLoopbackHost says whether host (of host:port) is a loopback address:
// localhost, 127.0.0.0/8 or ::1.
func IsLoopbackHost(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

func (d *Database) validate(path *field.Path) field.ErrorList {
	switch {
	case d.DSN == "" && d.DSNFile == "":
		return field.ErrorList{field.Required(path, "one of dsn (postgres://... or a SQLite file path) or dsnFile")}
	case d.DSN != "" && d.DSNFile != "":
		return field.ErrorList{field.Forbidden(path.Child("dsnFile"), "give dsn or dsnFile, not both")}
	}
	return nil
}

// Validate checks the configuration; each error names its field.
func (c *AggregatorConfiguration) Validate() field.ErrorList {
	errs := c.validate(nil)
	errs = append(errs, c.Database.validate(field.NewPath("database"))...)
	if c.Broker != nil {
		errs = append(errs, c.Broker.validate(field.NewPath("broker"))...)
	}
	errs = append(errs, positive(field.NewPath("flushInterval"), c.FlushInterval)...)
	wc := field.NewPath("workloadClusters")
	if sfx := c.WorkloadClusters.KubeconfigSecretSuffix; sfx != "" {
		for _, msg := range validation.IsDNS1123Subdomain("c" + sfx) {
			errs = append(errs, field.Invalid(wc.Child("kubeconfigSecretSuffix"), sfx, "a cluster's name with it must be a Secret's name: "+msg))
		}
	}
	errs = append(errs, positive(wc.Child("requestTimeout"), c.WorkloadClusters.RequestTimeout)...)
	return append(errs, (&ClientConnection{QPS: c.WorkloadClusters.QPS, Burst: c.WorkloadClusters.Burst}).validate(wc)...)
}

// Validate checks the configuration; each error names its field.
func (c *ConsoleConfiguration) Validate() field.ErrorList {
	errs := hostPort(field.NewPath("listen"), c.Listen)
	errs = append(errs, c.Database.validate(field.NewPath("database"))...)
	errs = append(errs, bindAddress(field.NewPath("health", "bindAddress"), c.Health.BindAddress)...)
	errs = append(errs, bindAddress(field.NewPath("metrics", "bindAddress"), c.Metrics.BindAddress)...)
	errs = append(errs, positive(field.NewPath("pollInterval"), c.PollInterval)...)
	if (c.TLS.CertFile == "") != (c.TLS.KeyFile == "") {
		errs = append(errs, field.Required(field.NewPath("tls"), "certFile and keyFile go together"))
	}
	if c.TLS.ClientCAFile != "" {
		errs = append(errs, field.Forbidden(field.NewPath("tls", "clientCAFile"), "the console signs people in with bearer tokens, not client certificates"))
	}
	if host, _, err := net.SplitHostPort(c.Listen); err == nil && !IsLoopbackHost(host) && c.TLS.CertFile == "" {
		errs = append(errs, field.Required(field.NewPath("tls", "certFile"),
			"listen "+c.Listen+" is not a loopback address: people sign in there with bearer tokens, which need TLS"))
	}
	return errs
}
