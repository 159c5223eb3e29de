# One IAM role per service, assumable only by that service's Kubernetes ServiceAccount (IRSA:
# deploy/k8s/overlays/production/serviceaccounts.yaml). Least privilege:
#   every service  sends to the queues (each process relays its transactional outbox) and reads their
#                  attributes; a consumer also receives, deletes and re-times its own queue's messages
#                  and dead-letters to its DLQ (a send, covered above)
#   signer         and only the signer: reads the wallet secrets, decrypts their data keys with the
#                  master key (bound to Sluice's encryption context), signs with the KMS wallet keys
#   keda           KEDA's operator reads the depth of the queues it scales on

locals {
  services = toset(["api", "signer", "broadcaster", "monitor", "recovery", "accountmgr"])
}

data "aws_iam_policy_document" "trust" {
  for_each = local.services
  statement {
    actions = ["sts:AssumeRoleWithWebIdentity"]
    principals {
      type        = "Federated"
      identifiers = [var.eks_oidc_provider_arn]
    }
    condition {
      test     = "StringEquals"
      variable = "${var.eks_oidc_provider_host}:sub"
      values   = ["system:serviceaccount:${var.namespace}:sluice-${each.key}"]
    }
    condition {
      test     = "StringEquals"
      variable = "${var.eks_oidc_provider_host}:aud"
      values   = ["sts.amazonaws.com"]
    }
  }
}

resource "aws_iam_role" "service" {
  for_each           = local.services
  name               = "${var.name_prefix}-${each.key}"
  assume_role_policy = data.aws_iam_policy_document.trust[each.key].json
}

# What every service does with SQS.
data "aws_iam_policy_document" "queues_send" {
  statement {
    actions   = ["sqs:SendMessage", "sqs:GetQueueUrl", "sqs:GetQueueAttributes"]
    resources = local.all_queue_arns
  }
}

resource "aws_iam_role_policy" "queues_send" {
  for_each = local.services
  name     = "queues-send"
  role     = aws_iam_role.service[each.key].id
  policy   = data.aws_iam_policy_document.queues_send.json
}

data "aws_iam_policy_document" "consume_tx_request" {
  statement {
    actions   = ["sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:ChangeMessageVisibility"]
    resources = [aws_sqs_queue.tx_request.arn]
  }
}

data "aws_iam_policy_document" "consume_signed_tx" {
  statement {
    actions   = ["sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:ChangeMessageVisibility"]
    resources = [aws_sqs_queue.signed_tx.arn]
  }
}

data "aws_iam_policy_document" "consume_tx_monitor" {
  statement {
    actions   = ["sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:ChangeMessageVisibility"]
    resources = [aws_sqs_queue.tx_monitor.arn]
  }
}

# accountmgr consumes balance-check; the signer, which holds the main account's key, balance-transfer.
data "aws_iam_policy_document" "consume_balance" {
  statement {
    actions   = ["sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:ChangeMessageVisibility"]
    resources = [aws_sqs_queue.balance_check.arn]
  }
}

data "aws_iam_policy_document" "consume_balance_transfer" {
  statement {
    actions   = ["sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:ChangeMessageVisibility"]
    resources = [aws_sqs_queue.balance_transfer.arn]
  }
}

resource "aws_iam_role_policy" "signer_consume_balance_transfer" {
  name   = "consume-balance-transfer"
  role   = aws_iam_role.service["signer"].id
  policy = data.aws_iam_policy_document.consume_balance_transfer.json
}

resource "aws_iam_role_policy" "signer_consume" {
  name   = "consume"
  role   = aws_iam_role.service["signer"].id
  policy = data.aws_iam_policy_document.consume_tx_request.json
}

resource "aws_iam_role_policy" "broadcaster_consume" {
  name   = "consume"
  role   = aws_iam_role.service["broadcaster"].id
  policy = data.aws_iam_policy_document.consume_signed_tx.json
}

resource "aws_iam_role_policy" "monitor_consume" {
  name   = "consume"
  role   = aws_iam_role.service["monitor"].id
  policy = data.aws_iam_policy_document.consume_tx_monitor.json
}

resource "aws_iam_role_policy" "accountmgr_consume" {
  name   = "consume"
  role   = aws_iam_role.service["accountmgr"].id
  policy = data.aws_iam_policy_document.consume_balance.json
}

# The signer alone holds keys.
data "aws_iam_policy_document" "signer_keys" {
  statement {
    sid       = "ReadWalletSecrets"
    actions   = ["secretsmanager:GetSecretValue", "secretsmanager:DescribeSecret"]
    resources = ["arn:aws:secretsmanager:${var.region}:${data.aws_caller_identity.current.account_id}:secret:${var.wallet_secret_prefix}*"]
  }
  statement {
    sid       = "UnwrapDataKeys"
    actions   = ["kms:Decrypt"]
    resources = [aws_kms_key.master.arn]
    condition {
      test     = "StringEquals"
      variable = "kms:EncryptionContext:sluice:purpose"
      values   = ["wallet-key"]
    }
  }
  statement {
    sid       = "SignWithKMSWallets"
    actions   = ["kms:Sign", "kms:GetPublicKey"]
    resources = [for k in aws_kms_key.signing : k.arn]
  }
}

resource "aws_iam_role_policy" "signer_keys" {
  name   = "keys"
  role   = aws_iam_role.service["signer"].id
  policy = data.aws_iam_policy_document.signer_keys.json
}

# KEDA's operator (namespace keda, ServiceAccount keda-operator) reads the depth of the scaled queues.
data "aws_iam_policy_document" "keda_trust" {
  statement {
    actions = ["sts:AssumeRoleWithWebIdentity"]
    principals {
      type        = "Federated"
      identifiers = [var.eks_oidc_provider_arn]
    }
    condition {
      test     = "StringEquals"
      variable = "${var.eks_oidc_provider_host}:sub"
      values   = ["system:serviceaccount:keda:keda-operator"]
    }
  }
}

resource "aws_iam_role" "keda" {
  name               = "${var.name_prefix}-keda"
  assume_role_policy = data.aws_iam_policy_document.keda_trust.json
}

data "aws_iam_policy_document" "keda_queues" {
  statement {
    actions   = ["sqs:GetQueueAttributes"]
    resources = [aws_sqs_queue.tx_request.arn, aws_sqs_queue.signed_tx.arn, aws_sqs_queue.tx_monitor.arn]
  }
}

resource "aws_iam_role_policy" "keda_queues" {
  name   = "queue-depth"
  role   = aws_iam_role.keda.id
  policy = data.aws_iam_policy_document.keda_queues.json
}
