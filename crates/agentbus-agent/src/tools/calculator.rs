//! The `calculator` tool: arithmetic expressions, exact on integers where possible.
//!
//! Integers are computed exactly (128-bit) for `+ - * % ^` and for `/` when the division
//! is exact; anything else (a fraction, an overflow, a function such as `sqrt`) falls
//! back to 64-bit floating point.

use schemars::JsonSchema;
use serde::Deserialize;

use crate::tool::{FunctionTool, ToolError};

/// The longest expression accepted, in bytes.
const MAX_LEN: usize = 2_000;
/// The deepest nesting accepted (parentheses, unary signs, powers).
const MAX_DEPTH: usize = 100;

/// The arguments of `calculator`.
#[derive(Debug, Deserialize, JsonSchema)]
pub struct CalculatorArgs {
    /// An arithmetic expression, e.g. `17 * 23` or `(2 + 3) ^ 4 / 5`. Operators:
    /// `+ - * / %` and `^` (or `**`) for powers; parentheses; functions `sqrt abs floor
    /// ceil round ln log10 log2 exp sin cos tan min max`; constants `pi e`.
    ///
    /// The schema allows only what an expression can hold (digits, operators, the
    /// function and constant names), so a model under constrained decoding cannot write
    /// prose ("7 kilometers") into it.
    #[schemars(
        regex(
            pattern = r"^(?:[0-9(\-]|sqrt|abs|floor|ceil|round|ln|log10|log2|exp|sin|cos|tan|min|max|pi|e)(?:[0-9 .+\-*/%^(),]|sqrt|abs|floor|ceil|round|ln|log10|log2|exp|sin|cos|tan|min|max|pi|e)*$"
        ),
        length(min = 1, max = 200)
    )]
    pub expression: String,
}

/// A number: an exact integer or a float.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Number {
    /// An exact integer.
    Int(i128),
    /// A floating-point number.
    Float(f64),
}

impl Number {
    fn as_f64(self) -> f64 {
        match self {
            Number::Int(i) => i as f64,
            Number::Float(f) => f,
        }
    }

    /// The number as JSON: an integer when it fits in 64 bits, else its decimal text;
    /// a float as a JSON number.
    pub fn to_json(self) -> serde_json::Value {
        match self {
            Number::Int(i) => match i64::try_from(i) {
                Ok(small) => serde_json::Value::from(small),
                Err(_) => serde_json::Value::String(i.to_string()),
            },
            Number::Float(f) => serde_json::Number::from_f64(f)
                .map(serde_json::Value::Number)
                .unwrap_or(serde_json::Value::Null),
        }
    }
}

impl std::fmt::Display for Number {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Number::Int(i) => write!(f, "{i}"),
            Number::Float(x) => write!(f, "{x}"),
        }
    }
}

/// Why an expression could not be evaluated.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{message} (at position {position})")]
pub struct CalcError {
    /// What is wrong.
    pub message: String,
    /// Byte offset in the expression where it was found.
    pub position: usize,
}

#[derive(Clone, Debug, PartialEq)]
enum Token {
    Num(Number),
    Ident(String),
    Op(char),
    LParen,
    RParen,
    Comma,
}

fn tokenize(text: &str) -> Result<Vec<(Token, usize)>, CalcError> {
    let mut tokens = Vec::new();
    let chars: Vec<(usize, char)> = text.char_indices().collect();
    let mut i = 0;
    while i < chars.len() {
        let (pos, c) = chars[i];
        if c.is_whitespace() || c == '_' {
            i += 1;
            continue;
        }
        if c.is_ascii_digit() || c == '.' {
            let start = i;
            let mut is_float = false;
            while i < chars.len()
                && (chars[i].1.is_ascii_digit() || chars[i].1 == '.' || chars[i].1 == '_')
            {
                is_float |= chars[i].1 == '.';
                i += 1;
            }
            if i < chars.len() && (chars[i].1 == 'e' || chars[i].1 == 'E') {
                let mut j = i + 1;
                if j < chars.len() && (chars[j].1 == '+' || chars[j].1 == '-') {
                    j += 1;
                }
                if j < chars.len() && chars[j].1.is_ascii_digit() {
                    is_float = true;
                    i = j;
                    while i < chars.len() && chars[i].1.is_ascii_digit() {
                        i += 1;
                    }
                }
            }
            let literal: String = chars[start..i]
                .iter()
                .map(|&(_, c)| c)
                .filter(|&c| c != '_')
                .collect();
            let number = if is_float {
                literal
                    .parse::<f64>()
                    .map(Number::Float)
                    .map_err(|_| CalcError {
                        message: format!("invalid number `{literal}`"),
                        position: pos,
                    })?
            } else {
                match literal.parse::<i128>() {
                    Ok(int) => Number::Int(int),
                    Err(_) => literal
                        .parse::<f64>()
                        .map(Number::Float)
                        .map_err(|_| CalcError {
                            message: format!("invalid number `{literal}`"),
                            position: pos,
                        })?,
                }
            };
            tokens.push((Token::Num(number), pos));
            continue;
        }
        if c.is_alphabetic() {
            let start = i;
            while i < chars.len() && (chars[i].1.is_alphanumeric()) {
                i += 1;
            }
            let name: String = chars[start..i].iter().map(|&(_, c)| c).collect();
            tokens.push((Token::Ident(name.to_lowercase()), pos));
            continue;
        }
        let token = match c {
            '+' | '-' | '/' | '%' | '^' => Token::Op(c),
            '−' => Token::Op('-'),
            '×' | '·' => Token::Op('*'),
            '÷' => Token::Op('/'),
            '*' => {
                if i + 1 < chars.len() && chars[i + 1].1 == '*' {
                    i += 1;
                    Token::Op('^')
                } else {
                    Token::Op('*')
                }
            }
            '(' => Token::LParen,
            ')' => Token::RParen,
            ',' => Token::Comma,
            other => {
                return Err(CalcError {
                    message: format!("unexpected character `{other}`"),
                    position: pos,
                });
            }
        };
        tokens.push((token, pos));
        i += 1;
    }
    Ok(tokens)
}

struct Parser {
    tokens: Vec<(Token, usize)>,
    at: usize,
    end: usize,
    depth: usize,
}

impl Parser {
    fn peek(&self) -> Option<&Token> {
        self.tokens.get(self.at).map(|(t, _)| t)
    }

    fn position(&self) -> usize {
        self.tokens
            .get(self.at)
            .map(|&(_, p)| p)
            .unwrap_or(self.end)
    }

    fn error(&self, message: impl Into<String>) -> CalcError {
        CalcError {
            message: message.into(),
            position: self.position(),
        }
    }

    fn enter(&mut self) -> Result<(), CalcError> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return Err(self.error("expression nested too deeply"));
        }
        Ok(())
    }

    fn expr(&mut self) -> Result<Number, CalcError> {
        let mut value = self.term()?;
        while let Some(Token::Op(op @ ('+' | '-'))) = self.peek().cloned() {
            let position = self.position();
            self.at += 1;
            let rhs = self.term()?;
            value = binary(op, value, rhs).map_err(|message| CalcError { message, position })?;
        }
        Ok(value)
    }

    fn term(&mut self) -> Result<Number, CalcError> {
        let mut value = self.unary()?;
        while let Some(Token::Op(op @ ('*' | '/' | '%'))) = self.peek().cloned() {
            let position = self.position();
            self.at += 1;
            let rhs = self.unary()?;
            value = binary(op, value, rhs).map_err(|message| CalcError { message, position })?;
        }
        Ok(value)
    }

    fn unary(&mut self) -> Result<Number, CalcError> {
        self.enter()?;
        let value = match self.peek() {
            Some(Token::Op('-')) => {
                let position = self.position();
                self.at += 1;
                let inner = self.unary()?;
                negate(inner).map_err(|message| CalcError { message, position })?
            }
            Some(Token::Op('+')) => {
                self.at += 1;
                self.unary()?
            }
            _ => self.power()?,
        };
        self.depth -= 1;
        Ok(value)
    }

    fn power(&mut self) -> Result<Number, CalcError> {
        let base = self.atom()?;
        if let Some(Token::Op('^')) = self.peek() {
            let position = self.position();
            self.at += 1;
            // Right-associative, and binds tighter than a unary minus on its left:
            // -2^2 = -4, 2^-1 = 0.5, 2^3^2 = 2^9.
            let exponent = self.unary()?;
            return binary('^', base, exponent).map_err(|message| CalcError { message, position });
        }
        Ok(base)
    }

    fn atom(&mut self) -> Result<Number, CalcError> {
        let position = self.position();
        match self.peek().cloned() {
            Some(Token::Num(n)) => {
                self.at += 1;
                Ok(n)
            }
            Some(Token::LParen) => {
                self.enter()?;
                self.at += 1;
                let value = self.expr()?;
                if self.peek() != Some(&Token::RParen) {
                    return Err(self.error("expected `)`"));
                }
                self.at += 1;
                self.depth -= 1;
                Ok(value)
            }
            Some(Token::Ident(name)) => {
                self.at += 1;
                if self.peek() == Some(&Token::LParen) {
                    self.enter()?;
                    self.at += 1;
                    let mut args = vec![self.expr()?];
                    while self.peek() == Some(&Token::Comma) {
                        self.at += 1;
                        args.push(self.expr()?);
                    }
                    if self.peek() != Some(&Token::RParen) {
                        return Err(self.error("expected `)` after function arguments"));
                    }
                    self.at += 1;
                    self.depth -= 1;
                    function(&name, &args).map_err(|message| CalcError { message, position })
                } else {
                    match name.as_str() {
                        "pi" | "π" => Ok(Number::Float(std::f64::consts::PI)),
                        "e" => Ok(Number::Float(std::f64::consts::E)),
                        _ => Err(CalcError {
                            message: format!("unknown name `{name}`"),
                            position,
                        }),
                    }
                }
            }
            Some(Token::RParen) => Err(self.error("unexpected `)`")),
            Some(Token::Comma) => Err(self.error("unexpected `,`")),
            Some(Token::Op(op)) => Err(self.error(format!("unexpected operator `{op}`"))),
            None => Err(self.error("unexpected end of expression")),
        }
    }
}

fn float(value: f64) -> Result<Number, String> {
    if value.is_finite() {
        Ok(Number::Float(value))
    } else if value.is_nan() {
        Err("the result is not a number".into())
    } else {
        Err("the result is too large".into())
    }
}

fn negate(value: Number) -> Result<Number, String> {
    match value {
        Number::Int(i) => Ok(i
            .checked_neg()
            .map(Number::Int)
            .unwrap_or(Number::Float(-(i as f64)))),
        Number::Float(f) => Ok(Number::Float(-f)),
    }
}

fn binary(op: char, a: Number, b: Number) -> Result<Number, String> {
    if let (Number::Int(x), Number::Int(y)) = (a, b) {
        let exact = match op {
            '+' => x.checked_add(y),
            '-' => x.checked_sub(y),
            '*' => x.checked_mul(y),
            '/' => {
                if y == 0 {
                    return Err("division by zero".into());
                }
                // `checked_rem` first: `i128::MIN % -1` overflows like the division.
                match x.checked_rem(y) {
                    Some(0) => x.checked_div(y),
                    _ => None,
                }
            }
            '%' => {
                if y == 0 {
                    return Err("modulo by zero".into());
                }
                x.checked_rem(y)
            }
            '^' => u32::try_from(y).ok().and_then(|e| x.checked_pow(e)),
            _ => None,
        };
        if let Some(result) = exact {
            return Ok(Number::Int(result));
        }
    }
    let (x, y) = (a.as_f64(), b.as_f64());
    match op {
        '+' => float(x + y),
        '-' => float(x - y),
        '*' => float(x * y),
        '/' if y == 0.0 => Err("division by zero".into()),
        '/' => float(x / y),
        '%' if y == 0.0 => Err("modulo by zero".into()),
        '%' => float(x % y),
        '^' => float(x.powf(y)),
        other => Err(format!("unknown operator `{other}`")),
    }
}

fn function(name: &str, args: &[Number]) -> Result<Number, String> {
    let one = |f: fn(f64) -> f64| -> Result<Number, String> {
        match args {
            [x] => float(f(x.as_f64())),
            _ => Err(format!("`{name}` takes one argument, got {}", args.len())),
        }
    };
    match name {
        "abs" => match args {
            [Number::Int(i)] => Ok(i
                .checked_abs()
                .map(Number::Int)
                .unwrap_or(Number::Float((*i as f64).abs()))),
            _ => one(f64::abs),
        },
        "floor" | "ceil" | "round" => match args {
            [Number::Int(i)] => Ok(Number::Int(*i)),
            [Number::Float(x)] => {
                let r = match name {
                    "floor" => x.floor(),
                    "ceil" => x.ceil(),
                    _ => x.round(),
                };
                if r.abs() < 1e18 {
                    Ok(Number::Int(r as i128))
                } else {
                    float(r)
                }
            }
            _ => Err(format!("`{name}` takes one argument, got {}", args.len())),
        },
        "sqrt" => match args {
            [x] if x.as_f64() < 0.0 => Err("square root of a negative number".into()),
            [Number::Int(i)] => {
                let root = (*i as f64).sqrt().round() as i128;
                if root.checked_mul(root) == Some(*i) {
                    Ok(Number::Int(root))
                } else {
                    one(f64::sqrt)
                }
            }
            _ => one(f64::sqrt),
        },
        "ln" => match args {
            [x] if x.as_f64() <= 0.0 => Err("logarithm of a non-positive number".into()),
            _ => one(f64::ln),
        },
        "log10" | "log" => match args {
            [x] if x.as_f64() <= 0.0 => Err("logarithm of a non-positive number".into()),
            _ => one(f64::log10),
        },
        "log2" => match args {
            [x] if x.as_f64() <= 0.0 => Err("logarithm of a non-positive number".into()),
            _ => one(f64::log2),
        },
        "exp" => one(f64::exp),
        "sin" => one(f64::sin),
        "cos" => one(f64::cos),
        "tan" => one(f64::tan),
        "min" | "max" => {
            let mut iter = args.iter().copied();
            let first = iter
                .next()
                .ok_or_else(|| format!("`{name}` needs at least one argument"))?;
            Ok(iter.fold(first, |best, x| {
                let better = if name == "min" {
                    x.as_f64() < best.as_f64()
                } else {
                    x.as_f64() > best.as_f64()
                };
                if better { x } else { best }
            }))
        }
        other => Err(format!("unknown function `{other}`")),
    }
}

/// Evaluates an arithmetic expression.
pub fn evaluate(expression: &str) -> Result<Number, CalcError> {
    if expression.len() > MAX_LEN {
        return Err(CalcError {
            message: format!("expression longer than {MAX_LEN} bytes"),
            position: MAX_LEN,
        });
    }
    let tokens = tokenize(expression)?;
    let mut parser = Parser {
        tokens,
        at: 0,
        end: expression.len(),
        depth: 0,
    };
    let value = parser.expr()?;
    if parser.at < parser.tokens.len() {
        return Err(parser.error("unexpected input after the expression"));
    }
    Ok(value)
}

/// The `calculator` tool.
pub fn calculator() -> FunctionTool {
    FunctionTool::new(
        "calculator",
        "Evaluates an arithmetic expression exactly (integers stay exact; fractions become \
         decimals). Supports + - * / % ^, parentheses, sqrt abs floor ceil round ln log10 \
         log2 exp sin cos tan min max, pi and e.",
        |args: CalculatorArgs| async move {
            evaluate(&args.expression)
                .map(Number::to_json)
                .map_err(|e| ToolError::failed("math", e.to_string()))
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn eval(text: &str) -> Number {
        evaluate(text).unwrap()
    }

    #[test]
    fn integers_are_exact() {
        assert_eq!(eval("17 * 23"), Number::Int(391));
        assert_eq!(
            eval("2 ^ 100"),
            Number::Int(1_267_650_600_228_229_401_496_703_205_376)
        );
        assert_eq!(eval("10 / 2"), Number::Int(5));
        assert_eq!(eval("7 % 3"), Number::Int(1));
        assert_eq!(eval("sqrt(144)"), Number::Int(12));
        assert_eq!(eval("1_000 * 3"), Number::Int(3000));
    }

    #[test]
    fn precedence_and_associativity() {
        assert_eq!(eval("2 + 3 * 4"), Number::Int(14));
        assert_eq!(eval("(2 + 3) * 4"), Number::Int(20));
        assert_eq!(eval("-2 ^ 2"), Number::Int(-4));
        assert_eq!(eval("2 ^ 3 ^ 2"), Number::Int(512));
        assert_eq!(eval("2 ** 10"), Number::Int(1024));
        assert_eq!(eval("10 - 4 - 3"), Number::Int(3));
        assert_eq!(eval("3 × 4 ÷ 2"), Number::Int(6));
        assert_eq!(eval("max(3, 9, 4)"), Number::Int(9));
    }

    #[test]
    fn fractions_and_overflow_fall_back_to_floats() {
        assert_eq!(eval("7 / 2"), Number::Float(3.5));
        assert_eq!(eval("2 ^ -1"), Number::Float(0.5));
        assert_eq!(eval("1.5 * 2"), Number::Float(3.0));
        assert!(matches!(eval("2 ^ 200"), Number::Float(x) if x > 1e60));
        assert!(
            matches!(eval("sqrt(2)"), Number::Float(x) if (x - std::f64::consts::SQRT_2).abs() < 1e-12)
        );
    }

    #[test]
    fn errors_name_the_problem() {
        assert_eq!(evaluate("1 / 0").unwrap_err().message, "division by zero");
        assert!(
            evaluate("2 +")
                .unwrap_err()
                .message
                .contains("end of expression")
        );
        assert!(
            evaluate("(1 + 2")
                .unwrap_err()
                .message
                .contains("expected `)`")
        );
        assert!(
            evaluate("foo(1)")
                .unwrap_err()
                .message
                .contains("unknown function")
        );
        assert!(
            evaluate("1 $ 2")
                .unwrap_err()
                .message
                .contains("unexpected character")
        );
        assert!(
            evaluate("1 2")
                .unwrap_err()
                .message
                .contains("after the expression")
        );
        assert!(
            evaluate(&"(".repeat(500))
                .unwrap_err()
                .message
                .contains("nested")
        );
        assert!(evaluate("sqrt(-1)").is_err());
    }

    #[test]
    fn integer_edge_cases_do_not_overflow() {
        // i128::MIN / -1 and i128::MIN % -1 overflow in 128 bits: they must fall back
        // to floats (or be exact where they can), never panic.
        let min = "(-2^126*2)";
        assert_eq!(eval(min), Number::Int(i128::MIN));
        assert!(matches!(eval(&format!("{min}/-1")), Number::Float(x) if x > 1.7e38));
        assert_eq!(eval(&format!("{min}%-1")), Number::Float(0.0));
        assert!(matches!(eval(&format!("-{min}")), Number::Float(x) if x > 1.7e38));
        assert!(matches!(eval(&format!("abs({min})")), Number::Float(x) if x > 1.7e38));
        assert!(matches!(eval(&format!("{min}*-1")), Number::Float(x) if x > 1.7e38));
        assert!(matches!(eval(&format!("{min}-1")), Number::Float(x) if x < -1.7e38));
        assert!(matches!(eval("(2^127-1)+1"), Number::Float(x) if x > 1.7e38));
        assert!(matches!(eval("(-2)^127*-1"), Number::Float(x) if x > 1.7e38));
        assert!(matches!(eval("10^40"), Number::Float(x) if x > 9e39));
        assert!(evaluate("2^2^2^2^2^2").is_err());
        assert!(evaluate("0^-1").is_err());
        assert!(evaluate("(-8)^0.5").is_err());
        assert!(evaluate(&format!("{min} % 0")).is_err());
        assert_eq!(
            eval("99999999999999999999999999999999999999999"),
            Number::Float(1e41)
        );
    }

    mod no_panic {
        use super::super::evaluate;
        use proptest::prelude::*;

        /// Numbers that hit the edges of the integer and float paths.
        fn number() -> impl Strategy<Value = String> {
            prop_oneof![
                any::<i64>().prop_map(|n| n.unsigned_abs().to_string()),
                Just("170141183460469231731687303715884105727".to_owned()),
                Just("170141183460469231731687303715884105728".to_owned()),
                Just("340282366920938463463374607431768211456".to_owned()),
                Just("0".to_owned()),
                Just("1".to_owned()),
                Just("2".to_owned()),
                Just("127".to_owned()),
                Just("1e308".to_owned()),
                Just("1e-320".to_owned()),
                Just("0.5".to_owned()),
                Just("pi".to_owned()),
                (0u32..200).prop_map(|n| n.to_string()),
                any::<f64>()
                    .prop_filter("finite", |x| x.is_finite())
                    .prop_map(|x| x.abs().to_string()),
            ]
        }

        /// Well-formed (and, through the mix, often ill-formed) expressions.
        fn expression() -> impl Strategy<Value = String> {
            number().prop_recursive(6, 64, 4, |inner| {
                let op = prop::sample::select(vec!["+", "-", "*", "/", "%", "^", "**"]);
                let function = prop::sample::select(vec![
                    "sqrt", "abs", "floor", "ceil", "round", "ln", "log10", "log2", "exp", "sin",
                    "cos", "tan", "min", "max", "nope",
                ]);
                prop_oneof![
                    (inner.clone(), op, inner.clone()).prop_map(|(a, op, b)| format!("{a}{op}{b}")),
                    inner.clone().prop_map(|a| format!("-{a}")),
                    inner.clone().prop_map(|a| format!("({a})")),
                    (function, prop::collection::vec(inner, 0..3))
                        .prop_map(|(f, args)| format!("{f}({})", args.join(","))),
                ]
            })
        }

        proptest! {
            #![proptest_config(ProptestConfig::with_cases(2_000))]

            #[test]
            fn random_expressions_never_panic(text in expression()) {
                let _ = evaluate(&text);
            }

            #[test]
            fn random_text_never_panics(text in "[-+*/%^()0-9.eE, a-z_×÷−π]{0,60}") {
                let _ = evaluate(&text);
            }
        }
    }

    #[test]
    fn big_integers_become_strings_in_json() {
        assert_eq!(Number::Int(391).to_json(), serde_json::json!(391));
        assert_eq!(
            eval("2^100").to_json(),
            serde_json::json!("1267650600228229401496703205376")
        );
    }
}
