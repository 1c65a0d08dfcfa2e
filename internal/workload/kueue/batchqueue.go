package kueue

// Names of the Kueue objects the BatchQueue controller
// (internal/workload/batchqueue) writes on the hub and on every workload
// cluster, for those who read them (the dispatcher, kubectl strata jobs).

// MultiKueueAdmissionCheck is the AdmissionCheck every ClusterQueue of the
// hub carries: the workloads that pass it are sent to workload clusters.
const MultiKueueAdmissionCheck = "strata-multikueue"

// MultiKueueConfigName is the hub's MultiKueueConfig listing one
// MultiKueueCluster per workload Cluster (named after it).
const MultiKueueConfigName = "strata"

// ManagedByLabel and ManagedBy label every Kueue object Strata writes.
const (
	ManagedByLabel = "app.kubernetes.io/managed-by"
	ManagedBy      = "strata"
)

// OrganizationCohort is the root Cohort of a tenant organisation's queues.
// Quota is lent only within a Cohort tree, so queues of two organisations
// never borrow from each other. The dot keeps it apart from the Cohorts
// named after BatchQueues, whose names are DNS labels.
func OrganizationCohort(organization string) string { return "org." + organization }
