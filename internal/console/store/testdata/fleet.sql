-- A small fleet, for the console's tests: datacenter dc1 with two
-- maintenance zones, clusters west (fresh) and east (its watch failing),
-- an app whose pod is not ready because its Node's machine is under a
-- planned upgrade. Times are around 1750000000000 (2025-06-15T15:06:40Z).
-- Statements end with a semicolon at the end of a line.
INSERT INTO machines (id, datacenter, maintenance_zone, rack, sku, state, healthy, health_message, pool, provision, os_image, kernel, node_config, updated, rev) VALUES
 ('dc1-z1-r1-m1', 'dc1', 1, 'r1', 'c6-large', 'allocated', 1, '', 'west-general', 'joined', 'flatcar-4081', '6.6.30', 'nc-2', 1750000000000, 1),
 ('dc1-z1-r1-m2', 'dc1', 1, 'r1', 'c6-large', 'available', 1, '', '', 'clean', 'flatcar-4081', '6.6.30', '', 1750000000000, 1),
 ('dc1-z1-r2-m1', 'dc1', 1, 'r2', 'c6-large', 'allocated', 1, '', 'west-general', 'joined', 'flatcar-4081', '6.6.30', 'nc-2', 1750000000000, 1),
 ('dc1-z1-r2-m2', 'dc1', 1, 'r2', 'c6-large', 'unhealthy', 0, 'disk /dev/sda: SMART reallocated sectors', '', 'clean', 'flatcar-4081', '6.6.30', '', 1750000000000, 1),
 ('dc1-z2-r1-m1', 'dc1', 2, 'r1', 'c6-large', 'disrupted', 1, '', 'west-general', 'joined', 'flatcar-4081', '6.6.30', 'nc-1', 1750000000000, 1),
 ('dc1-z2-r1-m2', 'dc1', 2, 'r1', 'c6-large', 'decommissioned', 1, '', '', 'clean', '', '', '', 1750000000000, 1),
 ('dc1-z2-r2-m1', 'dc1', 2, 'r2', 'c6-large', 'allocated', 1, '', 'west-general', 'joined', 'flatcar-4081', '6.6.30', 'nc-1', 1750000000000, 1),
 ('dc2-z1-r1-m1', 'dc2', 1, 'r1', 'm7-xl', 'available', 1, '', '', 'clean', 'flatcar-4081', '6.6.30', '', 1750000000000, 1);
INSERT INTO disruptions (id, machine, pool, datacenter, maintenance_zone, reason, state, actor, on_behalf_of, message, created, updated, history, rev) VALUES
 ('d-1', 'dc1-z2-r1-m1', 'west-general', 'dc1', 2, 'planned-upgrade', 'in-progress', 'maintenance/os-2025-06', 'alice@example.com', 'reimage to nc-2', 1749999000000, 1749999500000,
  '[{"from":"","to":"pending","actor":"maintenance/os-2025-06","onBehalfOf":"alice@example.com","message":"opened","time":"2025-06-15T14:50:00Z"},{"from":"pending","to":"in-progress","actor":"cluster-manager/west","message":"drained","time":"2025-06-15T14:58:20Z"}]', 1),
 ('d-0', 'dc1-z2-r1-m1', 'west-general', 'dc1', 2, 'hardware-repair', 'completed', 'remediation/west', '', 'replace DIMM B2', 1740000000000, 1740100000000,
  '[{"from":"","to":"pending","actor":"remediation/west","time":"2025-02-19T21:20:00Z"},{"from":"in-progress","to":"completed","actor":"dc-ops","message":"DIMM replaced","time":"2025-02-21T01:06:40Z"}]', 1);
INSERT INTO broker_pools (name, datacenter, profile, capacity, data, rev) VALUES
 ('west-general', 'dc1', 'general', 4, '{"name":"west-general","capacity":4}', 1);
INSERT INTO nodes (cluster, name, machine, datacenter, maintenance_zone, rack, pool, profile, ready, unschedulable, problems, kubelet_version, cpu_milli, memory_bytes, created, rev) VALUES
 ('west', 'west-n1', 'dc1-z1-r1-m1', 'dc1', 1, 'r1', 'west-general', 'general', 'True', 0, '', 'v1.33.1', 16000, 68719476736, 1740000000000, 1),
 ('west', 'west-n2', 'dc1-z2-r1-m1', 'dc1', 2, 'r1', 'west-general', 'general', 'False', 1, 'Ready: kubelet stopped posting node status', 'v1.33.1', 16000, 68719476736, 1740000000000, 1),
 ('west', 'west-n3', 'dc1-z1-r2-m1', 'dc1', 1, 'r2', 'west-general', 'general', 'True', 0, '', 'v1.33.1', 16000, 68719476736, 1740000000000, 1),
 ('west', 'west-n4', 'dc1-z2-r2-m1', 'dc1', 2, 'r2', 'west-general', 'general', 'Unknown', 0, 'Ready: unknown', 'v1.33.1', 16000, 68719476736, 1740000000000, 1);
INSERT INTO pods (cluster, namespace, name, app, version, node, phase, ready, reason, message, restarts, created, rev) VALUES
 ('west', 'shop', 'web-7d9f-abcde', 'web', 'v2', 'west-n1', 'Running', 1, '', '', 0, 1749990000000, 1),
 ('west', 'shop', 'web-7d9f-fghij', 'web', 'v2', 'west-n2', 'Running', 0, 'NodeNotReady', 'the node west-n2 is not ready', 1, 1749990000000, 1),
 ('west', 'shop', 'web-7d9f-klmno', 'web', 'v2', 'west-n3', 'Running', 1, '', '', 0, 1749990000000, 1),
 ('west', 'shop', 'db-0', 'db', '14.2', 'west-n3', 'Running', 1, '', '', 0, 1749990000000, 1),
 ('west', 'kube-system', 'coredns-1', '', '', 'west-n1', 'Running', 1, '', '', 0, 1749990000000, 1);
INSERT INTO objects (cluster, kind, namespace, name, data, rev) VALUES
 ('hub', 'Cluster', '', 'west', '{"apiVersion":"fleet.strata.dev/v1alpha1","kind":"Cluster","metadata":{"name":"west"},"spec":{"datacenter":"dc1","kubeconfigSecretRef":{"namespace":"strata-system","name":"west-kubeconfig"}},"status":{"kubernetesVersion":"v1.33.1","nodes":4,"readyNodes":2,"conditions":[{"type":"Ready","status":"True","reason":"Reachable","message":"API server ready","lastTransitionTime":"2025-06-15T10:00:00Z"},{"type":"DrainsOnSchedule","status":"True","reason":"DrainsWithinDeadline","message":"","lastTransitionTime":"2025-06-15T10:00:00Z"}]}}', 1),
 ('hub', 'Cluster', '', 'east', '{"apiVersion":"fleet.strata.dev/v1alpha1","kind":"Cluster","metadata":{"name":"east"},"spec":{"datacenter":"dc2","kubeconfigSecretRef":{"namespace":"strata-system","name":"east-kubeconfig"}},"status":{"nodes":0,"readyNodes":0,"conditions":[{"type":"Ready","status":"False","reason":"APIServerUnreachable","message":"dial tcp 10.0.0.2:6443: connect: connection refused","lastTransitionTime":"2025-06-15T14:00:00Z"}]}}', 1),
 ('hub', 'Pool', '', 'west-general', '{"apiVersion":"fleet.strata.dev/v1alpha1","kind":"Pool","metadata":{"name":"west-general"},"spec":{"cluster":"west","capacity":4,"nodeProfile":"general","nodeConfig":"nc-2"},"status":{"desired":4,"allocated":4,"nodes":4,"ready":2,"draining":1,"conditions":[{"type":"Ready","status":"False","reason":"Draining","message":"draining west-n2 for disruption d-1","lastTransitionTime":"2025-06-15T14:58:20Z"}]}}', 1),
 ('hub', 'MaintenanceRollout', '', 'os-2025-06', '{"apiVersion":"fleet.strata.dev/v1alpha1","kind":"MaintenanceRollout","metadata":{"name":"os-2025-06"},"spec":{"pools":["west-general"],"nodeConfig":"nc-2","toleratedFailures":1},"status":{"currentZone":2,"machines":4,"updated":2,"inProgress":1,"failed":0,"skipped":0,"zones":[{"maintenanceZone":1,"phase":"Complete","machines":2,"updated":2,"inProgress":0,"failed":0,"skipped":0},{"maintenanceZone":2,"phase":"InProgress","machines":2,"updated":0,"inProgress":1,"failed":0,"skipped":0}],"conditions":[{"type":"Progressing","status":"True","reason":"Maintaining","message":"draining and reimaging zone 2","lastTransitionTime":"2025-06-15T14:50:00Z"},{"type":"Paused","status":"False","reason":"NotPaused","message":"","lastTransitionTime":"2025-06-15T14:00:00Z"},{"type":"Complete","status":"False","reason":"NotComplete","message":"2 machines left","lastTransitionTime":"2025-06-15T14:00:00Z"}]}}', 1),
 ('hub', 'AppNamespace', '', 'shop', '{"apiVersion":"apps.strata.dev/v1alpha1","kind":"AppNamespace","metadata":{"name":"shop"},"spec":{"app":"shop","tenant":"stateless","nodeProfile":"general"},"status":{"cluster":"west","clusters":["west"],"namespace":"shop"}}', 1),
 ('west', 'StatelessApp', 'shop', 'web', '{"apiVersion":"apps.strata.dev/v1alpha1","kind":"StatelessApp","metadata":{"name":"web","namespace":"shop"},"spec":{"application":"web","appVersion":"v2","replicas":3,"canary":{"appVersion":"v3","percent":10},"resources":{"cpu":"1","memory":"1Gi"}},"status":{"replicas":3,"readyReplicas":2,"stable":{"appVersion":"v2","replicas":3,"updatedReplicas":3,"readyReplicas":2},"failure":{"category":"Infra","reason":"NodeNotReady","message":"1 pod on a Node that is not ready","failingPods":1},"conditions":[{"type":"Ready","status":"False","reason":"ReplicasUnavailable","message":"2 of 3 replicas ready","lastTransitionTime":"2025-06-15T14:58:20Z"}]}}', 1),
 ('west', 'StatefulApp', 'shop', 'db', '{"apiVersion":"apps.strata.dev/v1alpha1","kind":"StatefulApp","metadata":{"name":"db","namespace":"shop"},"spec":{"application":"db","version":"14.2","replicas":1,"resources":{"cpu":"1","memory":"1Gi"},"storage":{"size":"10Gi"},"shardManager":{"endpoint":"sm:443","transport":"gRPC"}},"status":{"replicas":1,"readyReplicas":1,"updatedReplicas":1,"conditions":[{"type":"Ready","status":"True","reason":"Available","message":"","lastTransitionTime":"2025-06-15T10:00:00Z"}]}}', 1),
 ('hub', 'StatelessApp', 'shop', 'web', '{"apiVersion":"apps.strata.dev/v1alpha1","kind":"StatelessApp","metadata":{"name":"web","namespace":"shop"},"spec":{"application":"web","appVersion":"v2","replicas":3,"resources":{"cpu":"1","memory":"1Gi"},"fleet":{"weights":{"west":1}}},"status":{"replicas":3,"readyReplicas":2,"clusters":[{"cluster":"west","replicas":3,"share":3,"readyReplicas":2,"appVersion":"v2","ready":false,"failure":{"category":"Infra","reason":"NodeNotReady","message":"1 pod on a Node that is not ready"}}],"release":{"appVersion":"v2","phase":"Released","message":"released to every cluster"}}}', 1);
INSERT INTO events (cluster, namespace, name, object_kind, object_name, type, reason, message, count, last_seen, rev) VALUES
 ('west', 'shop', 'web.1', 'StatelessApp', 'web', 'Warning', 'ReplicasUnavailable', '2 of 3 replicas ready: <script>alert(1)</script>', 3, 1749999600000, 1),
 ('west', 'shop', 'web.0', 'StatelessApp', 'web', 'Normal', 'RolledOut', 'v2 rolled out', 1, 1749990000000, 1),
 ('west', '', 'west-n2.1', 'Node', 'west-n2', 'Warning', 'NodeNotReady', 'Node west-n2 status is now: NodeNotReady', 1, 1749999500000, 1);
INSERT INTO sources (cluster, kind, resource_version, synced, last_seen, last_error, error_since) VALUES
 ('hub', 'Cluster', '100', 1, 1749999999000, '', 0),
 ('west', 'Node', '200', 1, 1749999998000, '', 0),
 ('west', 'Pod', '201', 1, 1749999999000, '', 0),
 ('east', 'Node', '50', 1, 1749999000000, 'dial tcp 10.0.0.2:6443: connect: connection refused', 1749999100000),
 ('broker', 'BrokerMachine', '', 1, 1749999999000, '', 0);
INSERT INTO revisions (kind, rev) VALUES ('', 1), ('Node', 1), ('Pod', 1), ('BrokerMachine', 1), ('BrokerDisruption', 1), ('StatelessApp', 1), ('Cluster', 1);
