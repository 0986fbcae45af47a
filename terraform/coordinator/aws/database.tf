resource "random_password" "database" {
  length = 40
  # Letters and digits only: the password is embedded in a postgres:// URL.
  special = false
}

resource "aws_db_subnet_group" "main" {
  name       = local.prefix
  subnet_ids = var.private_subnet_ids
  tags       = local.tags
}

resource "aws_db_parameter_group" "main" {
  name   = "${local.prefix}-pg${var.db_engine_version}"
  family = "postgres${var.db_engine_version}"
  tags   = local.tags

  # Refuse unencrypted connections.
  parameter {
    name  = "rds.force_ssl"
    value = "1"
  }

  lifecycle {
    create_before_destroy = true
  }
}

resource "aws_db_instance" "main" {
  #checkov:skip=CKV_AWS_161:The broker authenticates with the password in the database URL secret, read once at task start; it has no RDS IAM token support (tokens last 15 minutes), so IAM authentication would only add an unused way in.
  identifier     = local.prefix
  engine         = "postgres"
  engine_version = var.db_engine_version
  instance_class = var.db_instance_class

  db_name  = "keyferry"
  username = "keyferry"
  password = random_password.database.result

  allocated_storage     = var.db_allocated_storage
  max_allocated_storage = var.db_allocated_storage * 5
  storage_type          = "gp3"
  storage_encrypted     = true

  multi_az               = var.db_multi_az
  db_subnet_group_name   = aws_db_subnet_group.main.name
  vpc_security_group_ids = [aws_security_group.database.id]
  parameter_group_name   = aws_db_parameter_group.main.name
  publicly_accessible    = false

  backup_retention_period    = 14
  copy_tags_to_snapshot      = true
  deletion_protection        = true
  skip_final_snapshot        = false
  final_snapshot_identifier  = "${local.prefix}-final"
  auto_minor_version_upgrade = true

  performance_insights_enabled    = true
  performance_insights_kms_key_id = aws_kms_key.at_rest.arn
  enabled_cloudwatch_logs_exports = ["postgresql"]

  # Enhanced Monitoring: OS metrics every 60 s.
  monitoring_interval = 60
  monitoring_role_arn = aws_iam_role.rds_monitoring.arn

  tags = local.tags

  depends_on = [aws_iam_role_policy_attachment.rds_monitoring]
}

# The role RDS Enhanced Monitoring uses to publish OS metrics to CloudWatch
# Logs (RDSOSMetrics), for this account's instances only.
data "aws_iam_policy_document" "rds_monitoring_assume" {
  statement {
    actions = ["sts:AssumeRole"]

    principals {
      type        = "Service"
      identifiers = ["monitoring.rds.amazonaws.com"]
    }

    condition {
      test     = "StringEquals"
      variable = "aws:SourceAccount"
      values   = [local.account_id]
    }
  }
}

resource "aws_iam_role" "rds_monitoring" {
  name               = "${local.prefix}-rds-monitoring"
  assume_role_policy = data.aws_iam_policy_document.rds_monitoring_assume.json
  tags               = local.tags
}

resource "aws_iam_role_policy_attachment" "rds_monitoring" {
  role       = aws_iam_role.rds_monitoring.name
  policy_arn = "arn:${local.partition}:iam::aws:policy/service-role/AmazonRDSEnhancedMonitoringRole"
}

# storage.url with the password, injected as KEYFERRY_STORAGE__URL (which
# overrides the configuration file). sslmode=require encrypts the connection
# (the server refuses anything else, rds.force_ssl); it does not verify the
# RDS certificate, because the image carries no RDS CA bundle.
resource "aws_secretsmanager_secret" "database_url" {
  #checkov:skip=CKV2_AWS_57:The password is a random_password in Terraform state and ECS injects the secret only at task start, so a rotation Lambda would leave running tasks with a dead password; rotate by replacing random_password.database and applying, which rolls the tasks (terraform/coordinator/aws/README.md).
  name                    = "${local.prefix}/database-url"
  description             = "Keyferry coordinator ${var.name}: storage.url (PostgreSQL URL with password)"
  kms_key_id              = aws_kms_key.at_rest.arn
  recovery_window_in_days = 30
  tags                    = local.tags
}

resource "aws_secretsmanager_secret_version" "database_url" {
  secret_id     = aws_secretsmanager_secret.database_url.id
  secret_string = "postgres://${aws_db_instance.main.username}:${random_password.database.result}@${aws_db_instance.main.address}:${aws_db_instance.main.port}/${aws_db_instance.main.db_name}?sslmode=require"
}
