# The queues exactly as internal/queue and internal/queue/sqsq name and configure them: <queue_prefix> +
# logical name, ".fifo" for signed-tx and its DLQ (ordered per sending address through MessageGroupId),
# 4 days' retention (queue.Retention), each work queue redriven to its DLQ after 5 receives
# (queue.MaxReceiveCount), the configured visibility timeout. Sluice sends its own deduplication ids.

resource "aws_sqs_queue" "request_dlq" {
  name                       = "${var.queue_prefix}request-dlq"
  message_retention_seconds  = 345600
  visibility_timeout_seconds = var.visibility_timeout_seconds
}

resource "aws_sqs_queue" "signed_tx_dlq" {
  name                        = "${var.queue_prefix}signed-tx-dlq.fifo"
  fifo_queue                  = true
  content_based_deduplication = false
  message_retention_seconds   = 345600
  visibility_timeout_seconds  = var.visibility_timeout_seconds
}

resource "aws_sqs_queue" "broadcast_tx_dlq" {
  name                       = "${var.queue_prefix}broadcast-tx-dlq"
  message_retention_seconds  = 345600
  visibility_timeout_seconds = var.visibility_timeout_seconds
}

resource "aws_sqs_queue" "balance_check_dlq" {
  name                       = "${var.queue_prefix}balance-check-dlq"
  message_retention_seconds  = 345600
  visibility_timeout_seconds = var.visibility_timeout_seconds
}

resource "aws_sqs_queue" "balance_transfer_dlq" {
  name                       = "${var.queue_prefix}balance-transfer-dlq"
  message_retention_seconds  = 345600
  visibility_timeout_seconds = var.visibility_timeout_seconds
}

resource "aws_sqs_queue" "tx_request" {
  name                       = "${var.queue_prefix}tx-request"
  message_retention_seconds  = 345600
  visibility_timeout_seconds = var.visibility_timeout_seconds
  redrive_policy             = jsonencode({
    deadLetterTargetArn = aws_sqs_queue.request_dlq.arn
    maxReceiveCount     = 5
  })
}

resource "aws_sqs_queue" "signed_tx" {
  name                        = "${var.queue_prefix}signed-tx.fifo"
  fifo_queue                  = true
  content_based_deduplication = false
  message_retention_seconds   = 345600
  visibility_timeout_seconds  = var.visibility_timeout_seconds
  redrive_policy              = jsonencode({
    deadLetterTargetArn = aws_sqs_queue.signed_tx_dlq.arn
    maxReceiveCount     = 5
  })
}

resource "aws_sqs_queue" "tx_monitor" {
  name                       = "${var.queue_prefix}tx-monitor"
  message_retention_seconds  = 345600
  visibility_timeout_seconds = var.visibility_timeout_seconds
  redrive_policy             = jsonencode({
    deadLetterTargetArn = aws_sqs_queue.broadcast_tx_dlq.arn
    maxReceiveCount     = 5
  })
}

resource "aws_sqs_queue" "balance_check" {
  name                       = "${var.queue_prefix}balance-check"
  message_retention_seconds  = 345600
  visibility_timeout_seconds = var.visibility_timeout_seconds
  redrive_policy             = jsonencode({
    deadLetterTargetArn = aws_sqs_queue.balance_check_dlq.arn
    maxReceiveCount     = 5
  })
}

resource "aws_sqs_queue" "balance_transfer" {
  name                       = "${var.queue_prefix}balance-transfer"
  message_retention_seconds  = 345600
  visibility_timeout_seconds = var.visibility_timeout_seconds
  redrive_policy             = jsonencode({
    deadLetterTargetArn = aws_sqs_queue.balance_transfer_dlq.arn
    maxReceiveCount     = 5
  })
}

locals {
  work_queues = {
    tx_request       = aws_sqs_queue.tx_request
    signed_tx        = aws_sqs_queue.signed_tx
    tx_monitor       = aws_sqs_queue.tx_monitor
    balance_check    = aws_sqs_queue.balance_check
    balance_transfer = aws_sqs_queue.balance_transfer
  }
  all_queue_arns = [
    aws_sqs_queue.tx_request.arn, aws_sqs_queue.signed_tx.arn, aws_sqs_queue.tx_monitor.arn,
    aws_sqs_queue.balance_check.arn, aws_sqs_queue.balance_transfer.arn,
    aws_sqs_queue.request_dlq.arn, aws_sqs_queue.signed_tx_dlq.arn, aws_sqs_queue.broadcast_tx_dlq.arn,
    aws_sqs_queue.balance_check_dlq.arn, aws_sqs_queue.balance_transfer_dlq.arn,
  ]
}
