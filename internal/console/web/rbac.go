package web

// What the console asks the hub, for controller-gen: whether a person's
// token is good, and what the hub's RBAC lets that person see. It reads
// nothing else from any cluster; its data is the fleet store.

// +kubebuilder:rbac:groups=authentication.k8s.io,resources=tokenreviews,verbs=create
// +kubebuilder:rbac:groups=authorization.k8s.io,resources=subjectaccessreviews,verbs=create
