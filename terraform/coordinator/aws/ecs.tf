resource "aws_cloudwatch_log_group" "broker" {
  name              = local.log_group_name
  retention_in_days = var.log_retention_days
  kms_key_id        = aws_kms_key.at_rest.arn
  tags              = local.tags
}

data "aws_iam_policy_document" "ecs_tasks_assume" {
  statement {
    actions = ["sts:AssumeRole"]

    principals {
      type        = "Service"
      identifiers = ["ecs-tasks.amazonaws.com"]
    }

    # Only ECS tasks of this account.
    condition {
      test     = "StringEquals"
      variable = "aws:SourceAccount"
      values   = [local.account_id]
    }
  }
}

# The execution role: used by the ECS agent to pull the image, write logs and
# read the database URL secret into the container's environment.
resource "aws_iam_role" "execution" {
  name               = "${local.prefix}-execution"
  assume_role_policy = data.aws_iam_policy_document.ecs_tasks_assume.json
  tags               = local.tags
}

resource "aws_iam_role_policy_attachment" "execution" {
  role       = aws_iam_role.execution.name
  policy_arn = "arn:${local.partition}:iam::aws:policy/service-role/AmazonECSTaskExecutionRolePolicy"
}

data "aws_iam_policy_document" "execution_secrets" {
  statement {
    sid       = "ReadTheDatabaseUrl"
    actions   = ["secretsmanager:GetSecretValue"]
    resources = [aws_secretsmanager_secret.database_url.arn]
  }

  # The secret is encrypted with the at-rest key; Secrets Manager decrypts
  # it on the execution role's behalf.
  statement {
    sid       = "DecryptTheDatabaseUrl"
    actions   = ["kms:Decrypt"]
    resources = [aws_kms_key.at_rest.arn]

    condition {
      test     = "StringEquals"
      variable = "kms:ViaService"
      values   = ["secretsmanager.${local.region}.amazonaws.com"]
    }
  }
}

resource "aws_iam_role_policy" "execution_secrets" {
  name   = "database-url"
  role   = aws_iam_role.execution.id
  policy = data.aws_iam_policy_document.execution_secrets.json
}

# The task role: the broker's own service identity. Its ambient credentials
# open the storage KEK and nothing else; workload-cloud KEKs are reached by
# federation with the broker's own issuer.
resource "aws_iam_role" "task" {
  name               = "${local.prefix}-broker"
  assume_role_policy = data.aws_iam_policy_document.ecs_tasks_assume.json
  tags               = local.tags
}

data "aws_iam_policy_document" "task_storage_kek" {
  statement {
    sid       = "StorageKek"
    actions   = ["kms:Encrypt", "kms:Decrypt"]
    resources = [aws_kms_key.storage.arn]
  }
}

resource "aws_iam_role_policy" "task_storage_kek" {
  name   = "storage-kek"
  role   = aws_iam_role.task.id
  policy = data.aws_iam_policy_document.task_storage_kek.json
}

resource "aws_ecs_cluster" "main" {
  name = local.prefix
  tags = local.tags

  setting {
    name  = "containerInsights"
    value = "enabled"
  }
}

locals {
  log_configuration = {
    logDriver = "awslogs"
    options = {
      awslogs-group         = aws_cloudwatch_log_group.broker.name
      awslogs-region        = local.region
      awslogs-stream-prefix = "keyferry"
    }
  }

  containers = [
    {
      # Writes keyferry.toml into the shared "config" volume and exits; the
      # broker starts only after it succeeded.
      name                   = "config"
      image                  = var.config_init_image
      essential              = false
      readonlyRootFilesystem = true
      entryPoint             = ["/bin/sh", "-c"]
      command                = ["printf '%s' \"$CONFIG_TOML_B64\" | base64 -d > ${local.config_mount_dir}/keyferry.toml"]
      environment            = [{ name = "CONFIG_TOML_B64", value = base64encode(module.config.toml) }]
      mountPoints            = [{ sourceVolume = "config", containerPath = local.config_mount_dir, readOnly = false }]
      logConfiguration       = local.log_configuration
    },
    {
      name                   = "keyferry"
      image                  = var.image
      essential              = true
      readonlyRootFilesystem = true
      entryPoint             = var.container_command
      command                = ["serve", "--config", "${local.config_mount_dir}/keyferry.toml"]
      portMappings           = [{ containerPort = local.container_port, protocol = "tcp" }]
      environment            = [{ name = "RUST_LOG", value = var.log_filter }]
      secrets                = [{ name = "KEYFERRY_STORAGE__URL", valueFrom = aws_secretsmanager_secret.database_url.arn }]
      mountPoints = [
        { sourceVolume = "config", containerPath = local.config_mount_dir, readOnly = true },
        { sourceVolume = "data", containerPath = local.data_dir, readOnly = false },
      ]
      dependsOn        = [{ containerName = "config", condition = "SUCCESS" }]
      linuxParameters  = { initProcessEnabled = true }
      stopTimeout      = 30
      logConfiguration = local.log_configuration
    },
  ]
}

resource "aws_ecs_task_definition" "broker" {
  family                   = local.prefix
  requires_compatibilities = ["FARGATE"]
  network_mode             = "awsvpc"
  cpu                      = var.cpu
  memory                   = var.memory
  execution_role_arn       = aws_iam_role.execution.arn
  task_role_arn            = aws_iam_role.task.arn
  container_definitions    = jsonencode(local.containers)
  tags                     = local.tags

  runtime_platform {
    operating_system_family = "LINUX"
    cpu_architecture        = var.cpu_architecture
  }

  # Task-local scratch volumes: the rendered configuration and data_dir.
  volume {
    name = "config"
  }

  volume {
    name = "data"
  }
}

resource "aws_ecs_service" "broker" {
  name                              = local.prefix
  cluster                           = aws_ecs_cluster.main.id
  task_definition                   = aws_ecs_task_definition.broker.arn
  desired_count                     = var.desired_count
  launch_type                       = "FARGATE"
  platform_version                  = "LATEST"
  health_check_grace_period_seconds = 60
  enable_execute_command            = false
  propagate_tags                    = "SERVICE"
  tags                              = local.tags

  network_configuration {
    subnets          = var.private_subnet_ids
    security_groups  = [aws_security_group.tasks.id]
    assign_public_ip = false
  }

  load_balancer {
    target_group_arn = aws_lb_target_group.broker.arn
    container_name   = "keyferry"
    container_port   = local.container_port
  }

  deployment_circuit_breaker {
    enable   = true
    rollback = true
  }

  # ECS reads the database URL secret only when a task starts: a new secret
  # version (a replaced password) rolls the tasks.
  force_new_deployment = true
  triggers             = {
    database_url = aws_secretsmanager_secret_version.database_url.version_id
  }

  depends_on = [aws_lb_listener.https, aws_iam_role_policy.task_storage_kek]
}
