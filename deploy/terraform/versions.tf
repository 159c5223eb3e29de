# Sluice's AWS resources: the SQS queues and their DLQs (sqs.tf), the KMS keys of key custody (kms.tf),
# and one IAM role per service bound to its Kubernetes ServiceAccount through IRSA (iam.tf). Only the
# signer's role can read the wallet secrets and use the KMS keys. deploy/terraform_test.go parses these
# files and checks them against the queue definitions in internal/queue, so the two cannot drift.
terraform {
  required_version = ">= 1.5"
  required_providers {
    aws = {
      source  = "hashicorp/aws"
      version = ">= 5.0"
    }
  }
}

provider "aws" {
  region = var.region
}

data "aws_caller_identity" "current" {}
