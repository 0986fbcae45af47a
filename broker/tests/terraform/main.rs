//! Static checks of Keyferry's Terraform modules, without Terraform.
//!
//! Every `.tf` file under the terraform root is parsed with hcl-rs. Then, per
//! directory (a "module"):
//!
//! - every `var.X` it references is declared, and (in module directories,
//!   not in example roots) every declared variable is referenced outside its
//!   own `variable` block;
//! - every reference to a local, a resource, a data source or a module (and a
//!   module's output, when its source is local) resolves to a declaration;
//! - module directories have at least one output and no `provider` block;
//! - every `terraform` block states `required_version`, and every
//!   `required_providers` entry has a `source` and a version constraint;
//! - every `module` block with a local source points at a directory with
//!   `.tf` files, passes only variables that module declares, and passes
//!   every variable it declares without a default.
//!
//! The ad-tech submodules must declare exactly the variables of the broker's
//! ad-tech export (`adtech_module_variables` against `export_keys`).

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::fs;
use std::path::{Path, PathBuf};

use hcl::expr::{Expression, ObjectKey, Operation, TemplateExpr, TraversalOperator};
use hcl::template::{Directive, Element, Template};
use hcl::{Block, Body, Structure};

/// The terraform root of the repository.
fn terraform_root() -> PathBuf {
    PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../terraform"))
}

const CLOUDS: [&str; 3] = ["aws", "gcp", "azure"];

/// Top-level names that are never resources.
const BUILTIN_ROOTS: [&str; 6] = ["each", "count", "path", "self", "terraform", "var"];

/// Attributes of a `module` block that are not input variables.
const MODULE_META_ARGUMENTS: [&str; 6] = [
    "source",
    "version",
    "providers",
    "depends_on",
    "count",
    "for_each",
];

/// One thing an expression refers to.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Reference {
    Var(String),
    Local(String),
    Module(String, Option<String>),
    Data(String, String),
    Resource(String, String),
}

impl fmt::Display for Reference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Reference::Var(name) => write!(f, "var.{name}"),
            Reference::Local(name) => write!(f, "local.{name}"),
            Reference::Module(name, None) => write!(f, "module.{name}"),
            Reference::Module(name, Some(output)) => write!(f, "module.{name}.{output}"),
            Reference::Data(kind, name) => write!(f, "data.{kind}.{name}"),
            Reference::Resource(kind, name) => write!(f, "{kind}.{name}"),
        }
    }
}

/// A reference and where it was found.
#[derive(Clone, Debug)]
struct Located {
    reference: Reference,
    file: PathBuf,
    context: String,
}

#[derive(Clone, Debug)]
struct ModuleCall {
    name: String,
    file: PathBuf,
    source: Option<String>,
    arguments: BTreeSet<String>,
}

/// What one directory of `.tf` files declares and references.
#[derive(Debug, Default)]
struct Module {
    dir: PathBuf,
    /// Declared variables, with whether each has a default.
    variables: BTreeMap<String, bool>,
    outputs: BTreeSet<String>,
    locals: BTreeSet<String>,
    resources: BTreeSet<(String, String)>,
    data: BTreeSet<(String, String)>,
    calls: Vec<ModuleCall>,
    provider_blocks: Vec<PathBuf>,
    /// Every reference outside `variable` blocks.
    references: Vec<Located>,
    /// Problems found while collecting (missing versions and the like).
    problems: Vec<String>,
}

/// The result of checking a tree: every problem, one line each.
#[derive(Debug, Default)]
struct Report {
    problems: Vec<String>,
}

impl Report {
    fn push(&mut self, problem: String) {
        self.problems.push(problem);
    }

    fn assert_clean(&self) {
        assert!(
            self.problems.is_empty(),
            "{} terraform problem(s):\n{}",
            self.problems.len(),
            self.problems.join("\n")
        );
    }

    fn mentions(&self, needle: &str) -> bool {
        self.problems.iter().any(|p| p.contains(needle))
    }
}

// ---------------------------------------------------------------------------
// Collecting references from expressions.

/// Collects references from expressions, with the names bound by enclosing
/// `for` expressions, template `for` directives and `dynamic` blocks.
struct Collector<'a> {
    out: &'a mut Vec<Located>,
    problems: &'a mut Vec<String>,
    file: &'a Path,
    context: String,
    bound: Vec<String>,
}

impl Collector<'_> {
    fn push(&mut self, reference: Reference) {
        self.out.push(Located {
            reference,
            file: self.file.to_owned(),
            context: self.context.clone(),
        });
    }

    fn with_bound<F: FnOnce(&mut Self)>(&mut self, names: &[&str], f: F) {
        let depth = self.bound.len();
        self.bound.extend(names.iter().map(|n| (*n).to_owned()));
        f(self);
        self.bound.truncate(depth);
    }

    fn body(&mut self, body: &Body) {
        for structure in body.iter() {
            match structure {
                Structure::Attribute(attr) => {
                    // Names of attributes to ignore, not references.
                    if attr.key.as_str() != "ignore_changes" {
                        self.expr(&attr.expr);
                    }
                }
                Structure::Block(block) => self.block(block),
            }
        }
    }

    fn block(&mut self, block: &Block) {
        if block.identifier() == "dynamic" {
            // `dynamic "x" { for_each = …; iterator = y; content { y.value } }`
            let iterator = block
                .body()
                .attributes()
                .find(|a| a.key.as_str() == "iterator")
                .and_then(|a| match &a.expr {
                    Expression::Variable(v) => Some(v.as_str().to_owned()),
                    _ => None,
                })
                .or_else(|| block.labels().first().map(|l| l.as_str().to_owned()))
                .unwrap_or_default();
            self.with_bound(&[iterator.as_str()], |c| c.body(block.body()));
        } else {
            self.body(block.body());
        }
    }

    fn expr(&mut self, expr: &Expression) {
        match expr {
            Expression::Null
            | Expression::Bool(_)
            | Expression::Number(_)
            | Expression::String(_)
            | Expression::Variable(_) => {}
            Expression::Array(items) => items.iter().for_each(|e| self.expr(e)),
            Expression::Object(object) => {
                for (key, value) in object {
                    if let ObjectKey::Expression(key) = key {
                        self.expr(key);
                    }
                    self.expr(value);
                }
            }
            Expression::TemplateExpr(template) => self.template_expr(template),
            Expression::Traversal(traversal) => {
                self.traversal_root(&traversal.expr, &traversal.operators);
                self.expr(&traversal.expr);
                for op in &traversal.operators {
                    if let TraversalOperator::Index(index) = op {
                        self.expr(index);
                    }
                }
            }
            Expression::FuncCall(call) => call.args.iter().for_each(|e| self.expr(e)),
            Expression::Parenthesis(inner) => self.expr(inner),
            Expression::Conditional(cond) => {
                self.expr(&cond.cond_expr);
                self.expr(&cond.true_expr);
                self.expr(&cond.false_expr);
            }
            Expression::Operation(op) => match op.as_ref() {
                Operation::Unary(unary) => self.expr(&unary.expr),
                Operation::Binary(binary) => {
                    self.expr(&binary.lhs_expr);
                    self.expr(&binary.rhs_expr);
                }
            },
            Expression::ForExpr(for_expr) => {
                self.expr(&for_expr.collection_expr);
                let mut names = vec![for_expr.value_var.as_str()];
                if let Some(key) = &for_expr.key_var {
                    names.push(key.as_str());
                }
                self.with_bound(&names, |c| {
                    if let Some(key) = &for_expr.key_expr {
                        c.expr(key);
                    }
                    c.expr(&for_expr.value_expr);
                    if let Some(cond) = &for_expr.cond_expr {
                        c.expr(cond);
                    }
                });
            }
            // hcl-rs may add variants; none exists today.
            _ => {}
        }
    }

    fn template_expr(&mut self, template: &TemplateExpr) {
        match Template::from_expr(template) {
            Ok(template) => self.template(&template),
            Err(e) => self.problems.push(format!(
                "{} ({}): template does not parse: {e}",
                self.file.display(),
                self.context
            )),
        }
    }

    fn template(&mut self, template: &Template) {
        for element in template.elements() {
            match element {
                Element::Literal(_) => {}
                Element::Interpolation(interpolation) => self.expr(&interpolation.expr),
                Element::Directive(directive) => match directive.as_ref() {
                    Directive::If(if_directive) => {
                        self.expr(&if_directive.cond_expr);
                        self.template(&if_directive.true_template);
                        if let Some(false_template) = &if_directive.false_template {
                            self.template(false_template);
                        }
                    }
                    Directive::For(for_directive) => {
                        self.expr(&for_directive.collection_expr);
                        let mut names = vec![for_directive.value_var.as_str()];
                        if let Some(key) = &for_directive.key_var {
                            names.push(key.as_str());
                        }
                        self.with_bound(&names, |c| c.template(&for_directive.template));
                    }
                },
            }
        }
    }

    /// Records what `root.op1.op2…` refers to.
    fn traversal_root(&mut self, root: &Expression, operators: &[TraversalOperator]) {
        let Expression::Variable(root) = root else {
            return;
        };
        let root = root.as_str();
        let attr = |i: usize| match operators.get(i) {
            Some(TraversalOperator::GetAttr(name)) => Some(name.as_str().to_owned()),
            _ => None,
        };
        if self.bound.iter().any(|b| b == root) {
            return;
        }
        let reference = match root {
            "var" => attr(0).map(Reference::Var),
            "local" => attr(0).map(Reference::Local),
            "module" => attr(0).map(|name| Reference::Module(name, attr(1))),
            "data" => match (attr(0), attr(1)) {
                (Some(kind), Some(name)) => Some(Reference::Data(kind, name)),
                _ => None,
            },
            _ if BUILTIN_ROOTS.contains(&root) => None,
            kind => attr(0).map(|name| Reference::Resource(kind.to_owned(), name)),
        };
        if let Some(reference) = reference {
            self.push(reference);
        }
    }
}

// ---------------------------------------------------------------------------
// Reading a directory.

fn label(block: &Block, i: usize) -> String {
    block
        .labels()
        .get(i)
        .map(|l| l.as_str().to_owned())
        .unwrap_or_default()
}

fn string_value(expr: &Expression) -> Option<String> {
    match expr {
        Expression::String(s) => Some(s.clone()),
        Expression::TemplateExpr(t) => match Template::from_expr(t) {
            Ok(template) => match template.elements() {
                [Element::Literal(s)] => Some(s.clone()),
                [] => Some(String::new()),
                _ => None,
            },
            Err(_) => None,
        },
        _ => None,
    }
}

fn object_key_name(key: &ObjectKey) -> Option<String> {
    match key {
        ObjectKey::Identifier(i) => Some(i.as_str().to_owned()),
        ObjectKey::Expression(e) => string_value(e),
        _ => None,
    }
}

fn object_get<'a>(expr: &'a Expression, key: &str) -> Option<&'a Expression> {
    let Expression::Object(object) = expr else {
        return None;
    };
    object
        .iter()
        .find_map(|(k, v)| (object_key_name(k)? == key).then_some(v))
}

/// Parses every `.tf` file of `dir` (not recursing). A file that does not
/// parse is reported by name and left out.
fn parse_dir(dir: &Path, report: &mut Report) -> Vec<(PathBuf, Body)> {
    let mut files: Vec<PathBuf> = match fs::read_dir(dir) {
        Ok(entries) => entries
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "tf") && p.is_file())
            .collect(),
        Err(e) => {
            report.push(format!("{}: cannot read: {e}", dir.display()));
            return Vec::new();
        }
    };
    files.sort();
    let mut bodies = Vec::new();
    for file in files {
        let text = match fs::read_to_string(&file) {
            Ok(text) => text,
            Err(e) => {
                report.push(format!("{}: cannot read: {e}", file.display()));
                continue;
            }
        };
        match hcl::parse(&text) {
            Ok(body) => bodies.push((file, body)),
            Err(e) => report.push(format!("{}: does not parse: {e}", file.display())),
        }
    }
    bodies
}

fn read_module(dir: &Path, report: &mut Report) -> Module {
    let mut module = Module {
        dir: dir.to_owned(),
        ..Module::default()
    };
    for (file, body) in parse_dir(dir, report) {
        for structure in body.iter() {
            match structure {
                Structure::Attribute(attr) => module.problems.push(format!(
                    "{}: top-level attribute `{}` is not Terraform",
                    file.display(),
                    attr.key
                )),
                Structure::Block(block) => read_block(&mut module, &file, block),
            }
        }
    }
    module
}

fn read_block(module: &mut Module, file: &Path, block: &Block) {
    let collect = |module: &mut Module, context: String, body: &Body| {
        let mut collector = Collector {
            out: &mut module.references,
            problems: &mut module.problems,
            file,
            context,
            bound: Vec::new(),
        };
        collector.body(body);
    };
    match block.identifier() {
        "variable" => {
            let has_default = block
                .body()
                .attributes()
                .any(|a| a.key.as_str() == "default");
            module.variables.insert(label(block, 0), has_default);
        }
        "output" => {
            module.outputs.insert(label(block, 0));
            collect(
                module,
                format!("output \"{}\"", label(block, 0)),
                block.body(),
            );
        }
        "locals" => {
            for attr in block.body().attributes() {
                module.locals.insert(attr.key.as_str().to_owned());
            }
            collect(module, "locals".into(), block.body());
        }
        "resource" => {
            module.resources.insert((label(block, 0), label(block, 1)));
            let context = format!("resource \"{}\" \"{}\"", label(block, 0), label(block, 1));
            collect(module, context, block.body());
        }
        "data" => {
            module.data.insert((label(block, 0), label(block, 1)));
            let context = format!("data \"{}\" \"{}\"", label(block, 0), label(block, 1));
            collect(module, context, block.body());
        }
        "module" => {
            let name = label(block, 0);
            let source = block
                .body()
                .attributes()
                .find(|a| a.key.as_str() == "source")
                .and_then(|a| string_value(&a.expr));
            let arguments = block
                .body()
                .attributes()
                .map(|a| a.key.as_str().to_owned())
                .filter(|k| !MODULE_META_ARGUMENTS.contains(&k.as_str()))
                .collect();
            module.calls.push(ModuleCall {
                name: name.clone(),
                file: file.to_owned(),
                source,
                arguments,
            });
            collect(module, format!("module \"{name}\""), block.body());
        }
        "provider" => {
            module.provider_blocks.push(file.to_owned());
            collect(
                module,
                format!("provider \"{}\"", label(block, 0)),
                block.body(),
            );
        }
        "terraform" => read_terraform_block(module, file, block),
        "check" => collect(
            module,
            format!("check \"{}\"", label(block, 0)),
            block.body(),
        ),
        "moved" | "import" | "removed" => {}
        other => module.problems.push(format!(
            "{}: unknown top-level block `{other}`",
            file.display()
        )),
    }
}

fn read_terraform_block(module: &mut Module, file: &Path, block: &Block) {
    let body = block.body();
    match body
        .attributes()
        .find(|a| a.key.as_str() == "required_version")
    {
        Some(attr) if string_value(&attr.expr).is_some_and(|v| !v.trim().is_empty()) => {}
        _ => module.problems.push(format!(
            "{}: terraform block has no required_version",
            file.display()
        )),
    }
    for providers in body
        .blocks()
        .filter(|b| b.identifier() == "required_providers")
    {
        for entry in providers.body().attributes() {
            let name = entry.key.as_str();
            let version = object_get(&entry.expr, "version").and_then(string_value);
            if version.is_none_or(|v| v.trim().is_empty()) {
                module.problems.push(format!(
                    "{}: required_providers.{name} has no version constraint",
                    file.display()
                ));
            }
            if object_get(&entry.expr, "source")
                .and_then(string_value)
                .is_none()
            {
                module.problems.push(format!(
                    "{}: required_providers.{name} has no source",
                    file.display()
                ));
            }
        }
    }
}

// ---------------------------------------------------------------------------
// Checking.

fn is_local_source(source: &str) -> bool {
    source.starts_with("./") || source.starts_with("../")
}

fn has_tf_files(dir: &Path) -> bool {
    fs::read_dir(dir).is_ok_and(|entries| {
        entries
            .filter_map(Result::ok)
            .any(|e| e.path().extension().is_some_and(|x| x == "tf"))
    })
}

/// Every directory under `root` with `.tf` files, sorted.
fn tf_dirs(root: &Path) -> Vec<PathBuf> {
    let mut dirs = Vec::new();
    let mut stack = vec![root.to_owned()];
    while let Some(dir) = stack.pop() {
        if has_tf_files(&dir) {
            dirs.push(dir.clone());
        }
        if let Ok(entries) = fs::read_dir(&dir) {
            for entry in entries.filter_map(Result::ok) {
                let path = entry.path();
                let hidden = path
                    .file_name()
                    .is_some_and(|n| n.to_string_lossy().starts_with('.'));
                if path.is_dir() && !hidden {
                    stack.push(path);
                }
            }
        }
    }
    dirs.sort();
    dirs
}

fn canonical(path: &Path) -> PathBuf {
    path.canonicalize().unwrap_or_else(|_| path.to_owned())
}

/// Checks the tree at `root`; `module_roots` are the subdirectories whose
/// every directory is a reusable module (others are modules only when some
/// `module` block calls them).
fn check_tree(root: &Path, module_roots: &[&str]) -> Report {
    let mut report = check_tree_absolute(root, module_roots);
    // Name files relative to the root.
    let prefix = format!("{}/", root.display());
    for problem in &mut report.problems {
        *problem = problem.replace(&prefix, "");
    }
    report
}

fn check_tree_absolute(root: &Path, module_roots: &[&str]) -> Report {
    let mut report = Report::default();
    let dirs = tf_dirs(root);
    if dirs.is_empty() {
        report.push(format!("{}: no .tf files", root.display()));
    }
    let modules: BTreeMap<PathBuf, Module> = dirs
        .iter()
        .map(|dir| (canonical(dir), read_module(dir, &mut report)))
        .collect();

    // Directories called by a local module source are modules too.
    let mut called = BTreeSet::new();
    for module in modules.values() {
        for call in &module.calls {
            if let Some(source) = call.source.as_deref().filter(|s| is_local_source(s)) {
                called.insert(canonical(&module.dir.join(source)));
            }
        }
    }
    let root = canonical(root);
    let is_module_dir = |dir: &Path| {
        called.contains(dir)
            || module_roots
                .iter()
                .any(|sub| dir.starts_with(root.join(sub)))
    };

    for (dir, module) in &modules {
        report.problems.extend(module.problems.iter().cloned());
        check_references(module, &modules, &mut report);
        check_calls(module, &modules, &mut report);
        if is_module_dir(dir) {
            check_module_dir(module, &mut report);
        }
    }
    report
}

fn check_references(module: &Module, modules: &BTreeMap<PathBuf, Module>, report: &mut Report) {
    let at = |r: &Located| format!("{} ({})", r.file.display(), r.context);
    for located in &module.references {
        match &located.reference {
            Reference::Var(name) if !module.variables.contains_key(name) => {
                report.push(format!("{}: var.{name} is not declared", at(located)));
            }
            Reference::Local(name) if !module.locals.contains(name) => {
                report.push(format!("{}: local.{name} is not declared", at(located)));
            }
            Reference::Data(kind, name) if !module.data.contains(&(kind.clone(), name.clone())) => {
                report.push(format!(
                    "{}: data.{kind}.{name} is not declared",
                    at(located)
                ));
            }
            Reference::Resource(kind, name)
                if !module.resources.contains(&(kind.clone(), name.clone())) =>
            {
                report.push(format!(
                    "{}: {kind}.{name} is not a declared resource (nor a known name)",
                    at(located)
                ));
            }
            Reference::Module(name, output) => {
                let Some(call) = module.calls.iter().find(|c| &c.name == name) else {
                    report.push(format!("{}: module.{name} is not declared", at(located)));
                    continue;
                };
                let callee = call
                    .source
                    .as_deref()
                    .filter(|s| is_local_source(s))
                    .and_then(|s| modules.get(&canonical(&module.dir.join(s))));
                if let (Some(callee), Some(output)) = (callee, output)
                    && !callee.outputs.contains(output)
                {
                    report.push(format!(
                        "{}: module.{name}.{output}: {} declares no output `{output}`",
                        at(located),
                        callee.dir.display()
                    ));
                }
            }
            _ => {}
        }
    }
}

fn check_calls(module: &Module, modules: &BTreeMap<PathBuf, Module>, report: &mut Report) {
    for call in &module.calls {
        let at = format!("{} (module \"{}\")", call.file.display(), call.name);
        let Some(source) = call.source.as_deref() else {
            report.push(format!("{at}: no literal source"));
            continue;
        };
        if !is_local_source(source) {
            continue;
        }
        let target = canonical(&module.dir.join(source));
        let Some(callee) = modules.get(&target) else {
            report.push(format!(
                "{at}: source {source} is not a directory with .tf files"
            ));
            continue;
        };
        for argument in &call.arguments {
            if !callee.variables.contains_key(argument) {
                report.push(format!(
                    "{at}: passes `{argument}`, which {} does not declare",
                    callee.dir.display()
                ));
            }
        }
        for (variable, has_default) in &callee.variables {
            if !has_default && !call.arguments.contains(variable) {
                report.push(format!(
                    "{at}: does not pass `{variable}`, which {} requires (no default)",
                    callee.dir.display()
                ));
            }
        }
    }
}

fn check_module_dir(module: &Module, report: &mut Report) {
    let dir = module.dir.display();
    let used: BTreeSet<&str> = module
        .references
        .iter()
        .filter_map(|r| match &r.reference {
            Reference::Var(name) => Some(name.as_str()),
            _ => None,
        })
        .collect();
    for variable in module.variables.keys() {
        if !used.contains(variable.as_str()) {
            report.push(format!(
                "{dir}: variable `{variable}` is declared but never used"
            ));
        }
    }
    if module.outputs.is_empty() {
        report.push(format!("{dir}: a module needs at least one output"));
    }
    for file in &module.provider_blocks {
        report.push(format!(
            "{}: a module must not configure providers (its callers do)",
            file.display()
        ));
    }
}

// ---------------------------------------------------------------------------
// The ad-tech export.

/// The variables of `workload-cloud/<cloud>/adtech`.
fn adtech_module_variables(cloud: &str) -> BTreeSet<String> {
    let dir = terraform_root()
        .join("workload-cloud")
        .join(cloud)
        .join("adtech");
    declared_variables(&dir)
}

fn declared_variables(dir: &Path) -> BTreeSet<String> {
    let mut report = Report::default();
    let module = read_module(dir, &mut report);
    report.assert_clean();
    module.variables.into_keys().collect()
}

/// The broker's ad-tech export (`GET /v1/admin/adtechs/{id}/terraform`),
/// from the broker's own function, for an ad tech with identities in every
/// cloud and every cloud enabled with a cloud KMS KEK.
fn adtech_export() -> serde_json::Value {
    use keyferry::config::{CloudConfig, CloudsConfig};
    use keyferry::storage::{AdTech, MappingRecord};
    let adtech = AdTech {
        id: "adtech-1".into(),
        name: "Ad Tech One".into(),
        sites: vec!["https://adtech.example".into()],
        use_cases: vec!["aggregation-service".into()],
        enabled: true,
        created_at: 0,
        updated_at: 0,
    };
    let mapping = |cloud: &str, issuer: &str, subject: &str| MappingRecord {
        id: format!("m-{cloud}"),
        adtech: adtech.id.clone(),
        cloud: cloud.into(),
        issuer: issuer.into(),
        subject: subject.into(),
        conditions: serde_json::json!([
            {"claim": "submods.container.image_digest", "op": "eq", "value": "sha256:abc"},
            {"claim": "aud", "op": "prefix", "value": "https://"}
        ]),
        scopes: vec!["keys:read".into()],
        enabled: true,
        created_at: 0,
    };
    let mappings = vec![
        mapping(
            "aws",
            "https://0123.tokens.sts.global.api.aws",
            "arn:aws:iam::444455556666:role/workload",
        ),
        mapping(
            "gcp",
            "https://accounts.google.com",
            "workload@adtech-one.iam.gserviceaccount.com",
        ),
        mapping(
            "azure",
            "https://login.microsoftonline.com/t/v2.0",
            "00000000-0000-0000-0000-000000000001",
        ),
    ];
    let clouds = CloudsConfig {
        aws: Some(CloudConfig::with_kek(
            "aws-kms://arn:aws:kms:us-east-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab",
        )),
        gcp: Some(CloudConfig::with_kek(
            "gcp-kms://projects/p/locations/global/keyRings/r/cryptoKeys/k",
        )),
        azure: Some(CloudConfig::with_kek(
            "azure-kv://vault.example.vault.azure.net/keys/splits",
        )),
    };
    let export = keyferry::admin::terraform::terraform_vars("a", &adtech, &mappings, &clouds);
    // Only `eq` conditions become Terraform conditions.
    assert_eq!(
        export["gcp"]["workload_identities"][0]["conditions"],
        serde_json::json!({"submods.container.image_digest": "sha256:abc"})
    );
    export
}

/// The keys of one cloud's object of the export: the tfvars it becomes.
fn export_keys(export: &serde_json::Value, cloud: &str) -> BTreeSet<String> {
    export[cloud]
        .as_object()
        .unwrap_or_else(|| panic!("the export has no `{cloud}` object"))
        .keys()
        .cloned()
        .collect()
}

/// The attribute names of the first `object({…})` in a type expression.
fn object_type_keys(expr: &Expression) -> Option<BTreeSet<String>> {
    match expr {
        Expression::FuncCall(call) if call.name.name.as_str() == "object" => {
            let Some(Expression::Object(object)) = call.args.first() else {
                return None;
            };
            Some(object.keys().filter_map(object_key_name).collect())
        }
        Expression::FuncCall(call) => call.args.iter().find_map(object_type_keys),
        _ => None,
    }
}

/// The attributes of the element objects of `workload_identities`.
fn workload_identity_type_keys(dir: &Path) -> BTreeSet<String> {
    let mut report = Report::default();
    for (_, body) in parse_dir(dir, &mut report) {
        for block in body.blocks() {
            if block.identifier() == "variable" && label(block, 0) == "workload_identities" {
                let ty = block
                    .body()
                    .attributes()
                    .find(|a| a.key.as_str() == "type")
                    .expect("workload_identities has a type");
                return object_type_keys(&ty.expr).expect("an object type");
            }
        }
    }
    report.assert_clean();
    panic!("{}: no workload_identities variable", dir.display());
}

// ---------------------------------------------------------------------------
// Tests of the real tree.

#[test]
fn every_module_and_example_is_consistent() {
    let report = check_tree(&terraform_root(), &["coordinator", "workload-cloud"]);
    report.assert_clean();
}

#[test]
fn the_tree_has_the_expected_modules() {
    let root = terraform_root();
    for dir in [
        "coordinator/config",
        "coordinator/gcp",
        "coordinator/aws",
        "workload-cloud/aws",
        "workload-cloud/aws/adtech",
        "workload-cloud/gcp",
        "workload-cloud/gcp/adtech",
        "workload-cloud/azure",
        "workload-cloud/azure/adtech",
    ] {
        assert!(has_tf_files(&root.join(dir)), "{dir} has no .tf files");
        assert!(
            root.join(dir).join("README.md").is_file(),
            "{dir} has no README.md"
        );
    }
}

#[test]
fn adtech_modules_take_exactly_the_export_variables() {
    let export = adtech_export();
    for cloud in CLOUDS {
        assert_eq!(
            adtech_module_variables(cloud),
            export_keys(&export, cloud),
            "workload-cloud/{cloud}/adtech variables differ from the export's `{cloud}` object"
        );
    }
}

#[test]
fn adtech_example_roots_take_exactly_the_export_variables() {
    let export = adtech_export();
    for cloud in CLOUDS {
        let dir = terraform_root()
            .join("examples")
            .join(format!("workload-cloud-{cloud}-adtech"));
        assert_eq!(
            declared_variables(&dir),
            export_keys(&export, cloud),
            "examples/workload-cloud-{cloud}-adtech variables differ from the export"
        );
        let example: serde_json::Value = serde_json::from_str(
            &fs::read_to_string(dir.join("example.tfvars.json")).expect("example.tfvars.json"),
        )
        .expect("example.tfvars.json is JSON");
        assert_eq!(
            export_keys(&serde_json::json!({ cloud: example }), cloud),
            export_keys(&export, cloud),
            "examples/workload-cloud-{cloud}-adtech/example.tfvars.json differs from the export"
        );
    }
}

#[test]
fn workload_identity_objects_match_the_export() {
    let export = adtech_export();
    for cloud in CLOUDS {
        let dir = terraform_root()
            .join("workload-cloud")
            .join(cloud)
            .join("adtech");
        let declared = workload_identity_type_keys(&dir);
        for identity in export[cloud]["workload_identities"]
            .as_array()
            .expect("workload_identities is an array")
        {
            let keys: BTreeSet<String> = identity
                .as_object()
                .expect("an identity is an object")
                .keys()
                .cloned()
                .collect();
            assert_eq!(
                keys, declared,
                "{cloud}: identity fields differ from the type"
            );
        }
    }
}

// ---------------------------------------------------------------------------
// The checker must be able to fail.

struct TempTree(PathBuf);

impl TempTree {
    fn new(name: &str) -> Self {
        let dir =
            std::env::temp_dir().join(format!("keyferry-tf-check-{name}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).expect("create temp dir");
        TempTree(dir)
    }

    fn write(&self, path: &str, text: &str) {
        let path = self.0.join(path);
        fs::create_dir_all(path.parent().expect("a parent")).expect("create dir");
        fs::write(path, text).expect("write file");
    }
}

impl Drop for TempTree {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

const CHILD_OK: &str = r#"
terraform {
  required_version = "~> 1.5"
  required_providers {
    random = {
      source  = "hashicorp/random"
      version = "~> 3.6"
    }
  }
}

variable "name" {
  type = string
}

variable "size" {
  type    = number
  default = 3
}

resource "random_pet" "this" {
  prefix = "${var.name}-x"
  length = var.size
}

output "id" {
  value = random_pet.this.id
}
"#;

#[test]
fn a_clean_tree_passes() {
    let tree = TempTree::new("clean");
    tree.write("modules/child/main.tf", CHILD_OK);
    tree.write(
        "root/main.tf",
        r#"
terraform {
  required_version = "~> 1.5"
}

module "child" {
  source = "../modules/child"
  name   = "a"
}

output "id" {
  value = module.child.id
}
"#,
    );
    check_tree(&tree.0, &["modules"]).assert_clean();
}

#[test]
fn a_broken_tree_is_reported() {
    let tree = TempTree::new("broken");
    tree.write(
        "modules/child/main.tf",
        &CHILD_OK.replace("prefix = \"${var.name}-x\"", "prefix = \"${var.nmae}-x\""),
    );
    tree.write(
        "modules/unused/main.tf",
        r#"
terraform {
  required_version = "~> 1.5"
  required_providers {
    aws = {
      source = "hashicorp/aws"
    }
  }
}

provider "aws" {}

variable "never" {
  type = string
}
"#,
    );
    tree.write(
        "root/main.tf",
        r#"
terraform {
  required_version = "~> 1.5"
}

module "child" {
  source = "../modules/child"
  sise   = 4
}

module "nowhere" {
  source = "../modules/missing"
}

output "id" {
  value = "${module.child.idd} ${random_pet.other.id} ${local.nothing}"
}
"#,
    );
    let report = check_tree(&tree.0, &["modules"]);
    for needle in [
        // an undeclared variable inside a template string
        "var.nmae is not declared",
        // `name` is declared but referenced only as the misspelt `nmae`
        "variable `name` is declared but never used",
        // a required input not passed, and an unknown one passed
        "does not pass `name`",
        "passes `sise`",
        // a local source that does not exist
        "source ../modules/missing is not a directory",
        // outputs that resolve to nothing
        "declares no output `idd`",
        "random_pet.other is not a declared resource",
        "local.nothing is not declared",
        // module hygiene
        "required_providers.aws has no version constraint",
        "a module must not configure providers",
        "a module needs at least one output",
        "variable `never` is declared but never used",
    ] {
        assert!(
            report.mentions(needle),
            "expected a problem containing {needle:?}, got:\n{}",
            report.problems.join("\n")
        );
    }
}

#[test]
fn a_file_that_does_not_parse_is_named() {
    let tree = TempTree::new("unparsable");
    tree.write("modules/bad/main.tf", "resource \"x\" {\n  a = \n");
    let report = check_tree(&tree.0, &["modules"]);
    assert!(
        report
            .problems
            .iter()
            .any(|p| p.contains("main.tf") && p.contains("does not parse")),
        "{:?}",
        report.problems
    );
}

#[test]
fn names_bound_by_for_expressions_are_not_resources() {
    let tree = TempTree::new("for");
    tree.write(
        "modules/m/main.tf",
        r#"
terraform {
  required_version = "~> 1.5"
}

variable "items" {
  type = list(object({ name = string }))
}

locals {
  names = [for some_item in var.items : some_item.name]
  text  = "%{ for other_item in var.items }${other_item.name}%{ endfor }"
}

output "names" {
  value = { for k_item, v_item in local.names : v_item.x => k_item if v_item.y != local.text }
}
"#,
    );
    check_tree(&tree.0, &["modules"]).assert_clean();
}

// ---------------------------------------------------------------------------
// The rendered keyferry.toml.

/// Terraform's `jsonencode`, for rendering the template with hcl-rs.
fn jsonencode(args: hcl::eval::FuncArgs) -> Result<hcl::Value, String> {
    serde_json::to_string(&args[0])
        .map(hcl::Value::from)
        .map_err(|e| e.to_string())
}

/// Renders `coordinator/config/keyferry.toml.tftpl` with `vars` as
/// `templatefile` would (every optional attribute present, null if unset).
fn render_config(vars: serde_json::Value) -> toml::Table {
    use hcl::eval::{Context, Evaluate, FuncDef, ParamType};
    use std::str::FromStr;

    let path = terraform_root().join("coordinator/config/keyferry.toml.tftpl");
    let text = fs::read_to_string(&path).expect("read the template");
    let template = Template::from_str(&text).expect("the template parses");
    let mut ctx = Context::new();
    ctx.declare_func(
        "jsonencode",
        FuncDef::builder().param(ParamType::Any).build(jsonencode),
    );
    for (name, value) in vars.as_object().expect("an object") {
        let value: hcl::Value = serde_json::from_value(value.clone()).expect("a value");
        ctx.declare_var(name.as_str(), value);
    }
    let rendered = template.evaluate(&ctx).expect("the template renders");
    if std::env::var_os("SHOW_TOML").is_some() {
        eprintln!("{rendered}");
    }
    toml::from_str(&rendered)
        .unwrap_or_else(|e| panic!("rendered keyferry.toml is not TOML: {e}\n{rendered}"))
}

fn config_vars(role: &str) -> serde_json::Value {
    serde_json::json!({
        "name": "a",
        "role": role,
        "public_url": "https://coordinator-a.example.com",
        "peer_url": if role == "type1" { serde_json::json!("https://coordinator-b.example.net") } else { serde_json::Value::Null },
        "peer_issuer": if role == "type2" { serde_json::json!("https://coordinator-a.example.com") } else { serde_json::Value::Null },
        "storage_kek": "gcp-kms://projects/p/locations/us-central1/keyRings/r/cryptoKeys/storage-kek",
        "listen": "0.0.0.0:8080",
        "data_dir": "/var/lib/keyferry",
        "max_connections": 10,
        "admin_oidc_issuer": "https://login.example.com/realms/operators",
        "admin_oidc_audience": "keyferry-admin",
        "admin_role_claim": null,
        "use_cases": [
            {"name": "aggregation-service", "aead": "chacha20-poly1305", "key_id_format": "uuid", "require_attestation": true},
            {"name": "shared-storage", "aead": "aes-256-gcm", "key_id_format": "sequence", "require_attestation": false}
        ],
        "clouds": {
            "aws": {"kek": "aws-kms://arn:aws:kms:us-east-1:111122223333:key/k", "role_arn": "arn:aws:iam::111122223333:role/r"},
            "azure": {"kek": "azure-kv://v.vault.azure.net/keys/splits/0123", "tenant_id": "t", "client_id": "c"}
        },
        "issuers": [
            {"name": "google", "kind": "gcp", "issuer": "https://accounts.google.com", "audience": "https://coordinator-a.example.com",
             "algorithms": null, "max_token_lifetime": null, "jwks_uri": null},
            {"name": "eks", "kind": "aws", "issuer": "https://oidc.eks.us-east-1.amazonaws.com/id/X", "audience": "a \"quoted\" <aud>",
             "algorithms": ["RS256"], "max_token_lifetime": "1h", "jwks_uri": null}
        ]
    })
}

#[test]
fn the_rendered_config_is_one_the_broker_accepts_in_production() {
    for role in ["type1", "type2"] {
        let config = render_config(config_vars(role));
        // The broker's own types refuse unknown keys, and its profile rules
        // must pass (the database URL comes from the environment).
        let mut with_db = config.clone();
        with_db.insert(
            "storage".into(),
            toml::Value::Table(toml::toml! { url = "postgres://keyferry@db:5432/keyferry" }),
        );
        let parsed: keyferry::config::Config =
            toml::from_str(&toml::to_string(&with_db).expect("toml"))
                .unwrap_or_else(|e| panic!("{role}: the broker refuses the rendered config: {e}"));
        if let Err(problems) = parsed.check() {
            panic!("{role}: config check refuses the rendered config: {problems:?}");
        }

        assert_eq!(config["profile"].as_str(), Some("production"));
        assert!(
            config.get("storage").and_then(|s| s.get("url")).is_none(),
            "storage.url carries the password and must come from the environment"
        );
        let coordinator = config["coordinator"].as_table().expect("[coordinator]");
        assert_eq!(coordinator["role"].as_str(), Some(role));
        assert_eq!(coordinator.contains_key("peer_url"), role == "type1");
        assert_eq!(coordinator.contains_key("peer_issuer"), role == "type2");
        assert_eq!(
            config["server"]["public_url"].as_str(),
            Some("https://coordinator-a.example.com")
        );
        assert_eq!(
            config["admin"]["oidc_audience"].as_str(),
            Some("keyferry-admin")
        );
        let use_cases = config["use_cases"].as_array().expect("[[use_cases]]");
        assert_eq!(use_cases.len(), 2);
        assert_eq!(use_cases[1]["require_attestation"].as_bool(), Some(false));
        let issuers = config["issuers"].as_array().expect("[[issuers]]");
        assert_eq!(issuers[1]["audience"].as_str(), Some("a \"quoted\" <aud>"));
        assert!(issuers[0].get("algorithms").is_none());
        assert_eq!(
            config["clouds"]["aws"]["role_arn"].as_str(),
            Some("arn:aws:iam::111122223333:role/r")
        );
        assert!(config["clouds"].get("gcp").is_none());
    }
}
