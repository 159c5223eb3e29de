# Key custody (docs/keys.md). The master key wraps each wallet secret's data key (keys.secretsmanager.
# master_kms_key_id); the signing keys are wallets whose private key never leaves KMS (backend kms).
# The wallet secrets themselves are created by `sluice keys create` (it seals the key before it leaves
# the operator's machine); Terraform never holds a key, so none can end up in its state. Their names
# start with var.wallet_secret_prefix, which the signer's policy is scoped to.

resource "aws_kms_key" "master" {
  description              = "Sluice master key: wraps the data keys of the wallet secrets"
  key_usage                = "ENCRYPT_DECRYPT"
  customer_master_key_spec = "SYMMETRIC_DEFAULT"
  enable_key_rotation      = true
  deletion_window_in_days  = 30
}

resource "aws_kms_alias" "master" {
  name          = "alias/${var.name_prefix}-master"
  target_key_id = aws_kms_key.master.key_id
}

resource "aws_kms_key" "signing" {
  for_each                 = var.kms_signing_keys
  description              = "Sluice wallet ${each.key}: secp256k1 key that signs inside KMS"
  key_usage                = "SIGN_VERIFY"
  customer_master_key_spec = "ECC_SECG_P256K1"
  deletion_window_in_days  = 30
}

resource "aws_kms_alias" "signing" {
  for_each      = var.kms_signing_keys
  name          = "alias/${var.name_prefix}-${each.key}"
  target_key_id = aws_kms_key.signing[each.key].key_id
}
