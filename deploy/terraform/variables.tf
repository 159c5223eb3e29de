variable "region" {
  description = "AWS region of the queues, secrets and keys (queue.sqs.region, keys.*.region)."
  type        = string
  default     = "us-east-1"
}

variable "name_prefix" {
  description = "Prefix of every name: IAM roles are <name_prefix>-<service>, KMS aliases alias/<name_prefix>-…"
  type        = string
  default     = "sluice-prod"
}

variable "queue_prefix" {
  description = "queue.sqs.prefix of the Sluice configuration: every queue is named <queue_prefix><logical name>."
  type        = string
  default     = "sluice-prod-"
}

variable "visibility_timeout_seconds" {
  description = "queue.visibility_timeout of the Sluice configuration (its default is 30 s)."
  type        = number
  default     = 30
}

variable "wallet_secret_prefix" {
  description = "Secrets Manager name prefix of the wallet secrets (keys.wallets[].secret_id), e.g. sluice/prod/polygon/hot-1."
  type        = string
  default     = "sluice/prod/"
}

variable "kms_signing_keys" {
  description = "Wallets whose key lives in KMS (backend kms): each becomes an ECC_SECG_P256K1 key aliased alias/<name_prefix>-<name>."
  type        = set(string)
  default     = ["polygon-main"]
}

variable "namespace" {
  description = "Kubernetes namespace of the Sluice ServiceAccounts (deploy/k8s/overlays/production)."
  type        = string
  default     = "sluice-prod"
}

variable "eks_oidc_provider_arn" {
  description = "ARN of the EKS cluster's IAM OIDC provider (IRSA)."
  type        = string
}

variable "eks_oidc_provider_host" {
  description = "The OIDC issuer without https://, e.g. oidc.eks.us-east-1.amazonaws.com/id/EXAMPLE."
  type        = string
}
