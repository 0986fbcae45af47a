resource "aws_acm_certificate" "broker" {
  domain_name       = var.domain_name
  validation_method = "DNS"
  tags              = local.tags

  lifecycle {
    create_before_destroy = true
  }
}

resource "aws_route53_record" "certificate_validation" {
  for_each = {
    for option in aws_acm_certificate.broker.domain_validation_options : option.domain_name => option
  }

  zone_id         = var.route53_zone_id
  name            = each.value.resource_record_name
  type            = each.value.resource_record_type
  records         = [each.value.resource_record_value]
  ttl             = 300
  allow_overwrite = true
}

resource "aws_acm_certificate_validation" "broker" {
  certificate_arn         = aws_acm_certificate.broker.arn
  validation_record_fqdns = [for record in aws_route53_record.certificate_validation : record.fqdn]
}

resource "aws_lb" "broker" {
  #checkov:skip=CKV2_AWS_28:Which web ACL fronts a coordinator (AWS WAF rules, a vendor product, a CDN) and how its per-client rate limits are tuned is the operator's choice, outside this module; associate one with the load_balancer_arn output (docs/threat-model.md asks for per-client limits in front of the broker).
  name                       = local.prefix
  load_balancer_type         = "application"
  internal                   = false
  subnets                    = var.public_subnet_ids
  security_groups            = [aws_security_group.alb.id]
  drop_invalid_header_fields = true
  enable_deletion_protection = true
  tags                       = local.tags

  # Every request the load balancer saw, including those it refused before
  # the broker (TLS failures, invalid headers).
  access_logs {
    bucket  = var.access_logs_bucket
    prefix  = local.prefix
    enabled = true
  }
}

resource "aws_lb_target_group" "broker" {
  name                 = local.prefix
  port                 = local.container_port
  protocol             = "HTTP"
  target_type          = "ip"
  vpc_id               = var.vpc_id
  deregistration_delay = 30
  tags                 = local.tags

  # /healthz, not /readyz: readiness also calls every workload cloud's KMS,
  # and one cloud's outage must not take every task out of service. Alert on
  # /readyz instead.
  health_check {
    path                = "/healthz"
    matcher             = "200"
    interval            = 15
    healthy_threshold   = 2
    unhealthy_threshold = 3
  }
}

# TLS only: there is no port-80 listener. TLS 1.2 and 1.3 with forward
# secrecy (the AWS TLS13-1-2 policy).
resource "aws_lb_listener" "https" {
  load_balancer_arn = aws_lb.broker.arn
  port              = 443
  protocol          = "HTTPS"
  ssl_policy        = "ELBSecurityPolicy-TLS13-1-2-2021-06"
  certificate_arn   = aws_acm_certificate_validation.broker.certificate_arn
  tags              = local.tags

  default_action {
    type             = "forward"
    target_group_arn = aws_lb_target_group.broker.arn
  }
}

resource "aws_route53_record" "broker" {
  zone_id = var.route53_zone_id
  name    = var.domain_name
  type    = "A"

  alias {
    name                   = aws_lb.broker.dns_name
    zone_id                = aws_lb.broker.zone_id
    evaluate_target_health = true
  }
}
