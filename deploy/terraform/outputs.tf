output "queue_urls" {
  description = "The work queues' URLs (the KEDA triggers of deploy/k8s/overlays/production/keda.yaml)."
  value       = { for k, q in local.work_queues : k => q.url }
}

output "role_arns" {
  description = "Each service's IAM role: the eks.amazonaws.com/role-arn of its ServiceAccount."
  value       = merge({ for s, r in aws_iam_role.service : s => r.arn }, { keda = aws_iam_role.keda.arn })
}

output "master_kms_key_alias" {
  description = "keys.secretsmanager.master_kms_key_id"
  value       = aws_kms_alias.master.name
}
